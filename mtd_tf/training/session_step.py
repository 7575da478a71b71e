"""The intra-session steps: one Adam update on L_in, and ranking for evaluation.

Both are `tf.function`s with a fixed input signature taken from the distributed dataset,
so they trace once and run under any `tf.distribute` strategy.
"""

import numpy as np
import tensorflow as tf

from mtd_tf import losses
from mtd_tf.serving.retrieval import DEFAULT_CHUNK_ITEMS
from mtd_tf.serving.retrieval import TopKRetrieval
from mtd_tf.training import worker_agreement
from mtd_tf.training.progress import PassProgress


def make_session_train_step(model, optimizer, strategy, l2, element_spec,
                            matmul_dtype=tf.float32, sampler=None):
    """Returns `step(batch) -> {"loss/in", "loss/total"}` for batches of (item_ids, targets).

    L_in is softmax cross-entropy over all M items (the reference's choice, DESIGN.md section 2),
    or over sampled negatives with a `sampled_softmax.PopularitySampler`, and with a repeat
    head -log P(target) of its mixture (whose explore part is then the sampled estimate);
    the L2 term covers every recommendation variable, embedding table included, except
    those whose term the optimizer adds itself (`RowSparseAdam.adds_l2`: the item tables,
    row by row).
    `matmul_dtype` is the dtype of L_in's three full-softmax matmuls.
    """
    adds_l2 = getattr(optimizer, "adds_l2", lambda variable: False)
    penalised = [variable for variable in model.trainable_variables if not adds_l2(variable)]

    head = getattr(model, "repeat_head", None)

    def replica_step(item_ids, targets):
        with tf.GradientTape() as tape:
            query = model.query_vectors(item_ids, training=True)
            # A sampled step reads only the rows it scores; the full softmax and the repeat
            # head read the whole table.
            candidates = (model.candidate_vectors() if sampler is None or head is not None
                          else None)
            if sampler is None:
                per_example = losses.full_softmax_cross_entropy(
                    query, candidates, targets, matmul_dtype=matmul_dtype)  # [batch]
            else:
                per_example = sampler.loss(query, model.candidate_rows, targets,
                                           optimizer.iterations)
            if head is not None:  # -log P(target) of the repeat/explore mixture
                per_example = -head.target_log_likelihood(item_ids, query, candidates,
                                                          -per_example, targets)
            # The global batch's size, counted over the replicas: the last batch of a pass
            # splits unevenly, and then the default (this replica's size times the
            # replicas) would weigh its parts unlike one device's mean.
            global_batch = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.shape(targets)[0])
            loss_in = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            penalty = tf.nn.scale_regularization_loss(l2 * losses.l2_penalty(penalised))
            loss = loss_in + penalty
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss_in, loss

    @tf.function(input_signature=[element_spec])
    def step(batch):
        item_ids, targets = batch
        loss_in, loss = strategy.run(replica_step, args=(item_ids, targets))
        sum_ = tf.distribute.ReduceOp.SUM
        return {"loss/in": strategy.reduce(sum_, loss_in, axis=None),
                "loss/total": strategy.reduce(sum_, loss, axis=None)}

    return step


def make_rank_step(model, strategy, element_spec, item_popularity,
                   chunk_items=DEFAULT_CHUNK_ITEMS):
    """Returns `step(batch) -> per-replica ranks` of each target among all M items, scored
    `chunk_items` at a time (`TopKRetrieval`).

    Sessions with no known item are ranked by `item_popularity` (float [M]), as served.
    """
    retrieval = TopKRetrieval(model, item_popularity, chunk_items)

    def replica_step(item_ids, targets):
        return retrieval.target_ranks(item_ids, targets)

    @tf.function(input_signature=[element_spec])
    def step(batch):
        item_ids, targets = batch
        return strategy.run(replica_step, args=(item_ids, targets))

    return step


def evaluate(rank_step, strategy, distributed_dataset, num_batches, accumulator,
             description="evaluation", check=None, with_positions=False):
    """Full-ranking P@K, MRR@K and NDCG@K in percent over a whole split (DESIGN.md
    section 5), accumulated in `accumulator` (a `metrics.RankingMetrics`, which may keep
    the ranks), with progress shown as `description` over `num_batches`; `check` is called
    before each batch (a stop signal's check raises there).

    Every replica's ranks are gathered (from every worker of a multi-worker run), so each
    worker sees the whole split's metrics. With `with_positions`, the dataset's elements
    are (batch, positions): int64 [batch] places of its pairs in the split, which put the
    gathered ranks back in the split's order whatever way the strategy dealt the batch out.
    """
    progress = PassProgress(description, num_batches)
    for element in distributed_dataset:
        if check is not None:
            check()
        batch, positions = element if with_positions else (element, None)
        if positions is None:
            ranks, = worker_agreement.concatenate_replicas(strategy, (rank_step(batch),))
        else:
            ranks, places = worker_agreement.concatenate_replicas(
                strategy, (rank_step(batch), positions))
            ranks = ranks[np.argsort(places, kind="stable")]  # [global batch]
        accumulator.update(ranks)
        progress.update(len(ranks))
    return accumulator.result()
