"""The whole global batch inside one replica's step, for the layers that write a batch
into a bank of recent sessions.

CSRM's outer memory and CoSAN's session bank are non-trainable variables written by the
training step's forward pass. Under a `tf.distribute` strategy each replica sees only its
share of the batch, and a replica-context write keeps one replica's value (the variables'
"only_first_replica" aggregation): within one machine the bank would hold half of what
one device's holds, and each worker of a multi-worker run would hold a different bank.
Gathered first, every replica writes the same rows, those of the whole batch.
"""

import tensorflow as tf


def whole_batch(rows):
    """The rows `[n, ...]` of every replica's share of the batch, concatenated in replica
    order (the batch's own order when each worker has one replica); `rows` itself outside
    a step with several replicas."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return rows
    return context.all_gather(rows, axis=0)
