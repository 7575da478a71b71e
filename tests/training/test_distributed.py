"""The training step under MirroredStrategy on two logical CPUs equals one device.

Logical devices must be configured before TensorFlow starts, so each check runs in a
fresh process; the script asserts and the test reads its exit status.
"""

import textwrap

import pytest

from tests import helpers

PRELUDE = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    two_cpus = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert two_cpus.num_replicas_in_sync == 2
""")

SAME_STEP = PRELUDE + textwrap.dedent("""
    import keras
    from mtd_tf.models.mtd import MTDModel
    from mtd_tf.training import session_step
    from mtd_tf.training.fused_adam import FusedAdam

    rng = np.random.default_rng(0)
    ids = rng.integers(1, 31, size=(8, 5)).astype(np.int32)
    ids[:, 3:][rng.random((8, 2)) < 0.5] = 0
    ids[:, 4][ids[:, 3] == 0] = 0  # right-padded
    targets = rng.integers(1, 31, size=8).astype(np.int32)
    dataset = tf.data.Dataset.from_tensors((ids, targets))

    def train(strategy, matmul_dtype):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = MTDModel(num_items=30, embedding_dim=8, max_len=10, dropout=0.0)
            model.build()
            optimizer = FusedAdam(learning_rate=0.01)
            optimizer.build(model.trainable_variables)
        distributed = strategy.experimental_distribute_dataset(dataset)
        step = session_step.make_session_train_step(
            model, optimizer, strategy, 1e-3, distributed.element_spec, matmul_dtype=matmul_dtype)
        losses = [float(step(batch)["loss/total"]) for _ in range(3) for batch in distributed]
        return [v.numpy() for v in model.trainable_variables], losses

    for dtype in (tf.float32, tf.bfloat16):
        one_weights, one_losses = train(tf.distribute.get_strategy(), dtype)
        two_weights, two_losses = train(two_cpus, dtype)
        tolerance = 1e-5 if dtype == tf.float32 else 2e-2
        np.testing.assert_allclose(two_losses, one_losses, rtol=tolerance)
        for two, one in zip(two_weights, one_weights):
            np.testing.assert_allclose(two, one, rtol=tolerance, atol=tolerance)
        assert one_losses[-1] < one_losses[0]

    # sparse_adam with the sampled softmax, its rows caught up under each strategy
    from mtd_tf import sampled_softmax
    from mtd_tf.training.row_sparse_adam import RowSparseAdam

    rng = np.random.default_rng(1)
    batches = [(rng.integers(1, 201, size=(8, 4)).astype(np.int32),
                rng.integers(1, 201, size=8).astype(np.int32)) for _ in range(4)]
    dataset = tf.data.Dataset.from_tensor_slices(
        tuple(np.stack(part) for part in zip(*batches)))
    sampler = sampled_softmax.PopularitySampler(np.arange(200) + 1, 16)

    def train_sparse(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = MTDModel(num_items=200, embedding_dim=8, max_len=10, dropout=0.0)
            model.build()
            optimizer = RowSparseAdam(learning_rate=0.01, row_variables=model.item_tables(),
                                      row_l2=1e-3)
            optimizer.build(model.trainable_variables)
        distributed = strategy.experimental_distribute_dataset(dataset)
        step = session_step.make_session_train_step(
            model, optimizer, strategy, 1e-3, distributed.element_spec, sampler=sampler)
        for batch in distributed:
            step(batch)
        optimizer.catch_up(model.item_tables(), strategy)
        return [v.numpy() for v in model.trainable_variables]

    for two, one in zip(train_sparse(two_cpus), train_sparse(tf.distribute.get_strategy())):
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)
    print("SAME")
""")

TRAINER_RUN = PRELUDE + textwrap.dedent("""
    import sys
    from tests import helpers
    data_dir = helpers.write_tiny_dataset(sys.argv[1])
    config = helpers.tiny_config(data_dir, sys.argv[1] + "/run", epochs=2)
    report = helpers.train_and_evaluate(config, strategy=two_cpus)
    assert report["epochs_run"] == 2 and 0.0 < report["test"]["P@20"] <= 100.0, report
    # The replicas' ranks are kept in the split's pair order: as the export serves them.
    import numpy as np
    from mtd_tf import rank_files
    from mtd_tf.data import registry
    from mtd_tf.serving import evaluation, export
    dataset = registry.load_dataset(config.trainer.dataset, data_dir)
    kept = rank_files.read_ranks(sys.argv[1] + "/run/" + rank_files.TEST_RANKS_FILE,
                                 len(dataset.test_targets))
    served, top_k = evaluation.served_ranks(export.load_export(sys.argv[1] + "/run/export"),
                                            dataset, 64)
    np.testing.assert_array_equal(np.minimum(kept, top_k + 1), served)
    print("TRAINED")
""")


def run_script(script, *args):
    result = helpers.run_python(["-c", script, *args], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_two_replicas_take_the_same_steps_as_one_device():
    """Adam with the full softmax (float32 and bfloat16 matmuls), and sparse_adam with the
    sampled softmax, its rows caught up: one process, as TensorFlow starts only once."""
    assert "SAME" in run_script(SAME_STEP)


@pytest.mark.slow
def test_trainer_runs_under_mirrored_strategy(tmp_path):
    assert "TRAINED" in run_script(TRAINER_RUN, str(tmp_path))
