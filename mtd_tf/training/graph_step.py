"""The cross-session step of DESIGN.md section 3: training `GraphInfomax` on `L_co`.

`make_graph_train_step` is one traced optimizer update; `run_graph_phase` schedules the
updates of one epoch with early stopping and keeps the best `H`, which the caller writes
back into the item table (`mtd_tf.models.graph_infomax.write_back`).
"""

import math
import time

from absl import logging
import numpy as np
import tensorflow as tf

from mtd_tf.errors import TrainingDivergedError

# A progress line at least this often: a graph step on a large catalogue takes seconds.
LOG_SECONDS = 10.0


def make_graph_train_step(infomax, optimizer, strategy=None):
    """Returns `step(features, adjacency, permutation) -> {"loss/co", "embeddings"}`.

    One optimizer update of `L_co` on `infomax`'s variables only (the embedding table is an
    input here). `embeddings` is `H` from the same forward pass, so the caller can keep the
    best `H` at no extra cost. The input signature is fixed (any M, fixed d), so the step
    traces once; builds the optimizer's slots now if the caller has not.

    The phase is full-batch, so under a strategy every replica computes the same step, and
    the optimizer all-reduces (sums) their gradients, each scaled by 1 / replicas: the
    update is one device's, applied on every replica, so no replica's weights can drift
    from the others' (on other machines the same kernels may differ in the last bits).
    `loss/co` is their mean, so early stopping decides alike on every worker.

    Args:
      infomax: a built `GraphInfomax` (see its docstring).
      optimizer: a `keras.optimizers.Optimizer`, e.g. Adam(1e-3).
      strategy: the `tf.distribute.Strategy` its variables were created under (default:
        the current one).

    Raises:
      ValueError: `infomax` is not built yet.
    """
    if not infomax.built:
        raise ValueError("build the GraphInfomax first: infomax.build((num_items, dim))")
    dim = infomax.discriminator.kernel.shape[0]
    if not optimizer.built:
        optimizer.build(infomax.trainable_variables)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync

    def replica_step(features, adjacency, permutation):
        variables = infomax.trainable_variables
        with tf.GradientTape() as tape:
            loss, embeddings = infomax.infomax_loss(features, adjacency, permutation, training=True)
            shared = loss / replicas  # the replicas' gradients are summed
        optimizer.apply_gradients(zip(tape.gradient(shared, variables), variables))
        return loss, embeddings

    @tf.function(input_signature=[
        tf.TensorSpec([None, dim], tf.float32, name="features"),
        tf.SparseTensorSpec([None, None], tf.float32),
        tf.TensorSpec([None], tf.int32, name="permutation"),
    ])
    def step(features, adjacency, permutation):
        loss, embeddings = strategy.run(replica_step, args=(features, adjacency, permutation))
        return {"loss/co": strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None),
                "embeddings": strategy.experimental_local_results(embeddings)[0]}

    return step


def run_graph_phase(train_step, features, adjacency, max_steps=1000, patience=10, seed=0,
                    check=None):
    """Trains the graph step with early stopping on `L_co` and returns the best `H`.

    Step `t` shuffles the rows with `np.random.default_rng(seed)`'s `t`-th permutation, so a
    phase is reproducible. Stops after `patience` steps without a lower loss (the
    reference's DGI schedule: up to 1000 steps, patience 10).

    Args:
      train_step: from `make_graph_train_step`.
      features: float32 `[M, d]`, the embedding table's item rows `E[1..M]`.
      adjacency: `tf.sparse.SparseTensor` float32 `[M, M]`.
      max_steps: most steps to take.
      patience: steps without improvement before stopping.
      seed: seed of the permutations.
      check: called before each step (a stop signal's check raises there), or None.

    Returns:
      (best_embeddings float32 `[M, d]` tf.Tensor, info dict with "steps" (steps taken),
      "loss/co" (best loss) and "stopped_early").

    Raises:
      ValueError: `max_steps` or `patience` is not a positive integer.
      TrainingDivergedError: the loss became NaN or Inf.
    """
    for name, value in (("max_steps", max_steps), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    features = tf.convert_to_tensor(features, tf.float32)
    num_items = int(features.shape[0])
    rng = np.random.default_rng(seed)
    best_loss, best_embeddings, best_step = math.inf, None, 0
    steps_without_improvement = 0
    stopped_early = False
    step = 0
    last_line = time.monotonic()
    for step in range(1, max_steps + 1):
        if check is not None:
            check()
        permutation = rng.permutation(num_items).astype(np.int32)
        outputs = train_step(features, adjacency, permutation)
        loss = float(outputs["loss/co"])
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"graph step {step}: loss/co is {loss}")
        if loss < best_loss:
            best_loss, best_embeddings, best_step = loss, outputs["embeddings"], step
            steps_without_improvement = 0
        else:
            steps_without_improvement += 1
        if time.monotonic() - last_line >= LOG_SECONDS:
            last_line = time.monotonic()
            logging.info("graph step %d: loss/co %.4f (best %.4f at step %d)",
                         step, loss, best_loss, best_step)
        if steps_without_improvement >= patience:
            stopped_early = True
            break
    logging.info("graph phase: %d steps, best loss/co %.4f at step %d%s", step, best_loss,
                 best_step, ", stopped early" if stopped_early else "")
    return best_embeddings, {"steps": step, "loss/co": best_loss, "stopped_early": stopped_early}
