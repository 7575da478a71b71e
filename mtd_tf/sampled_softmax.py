"""Sampled softmax for large catalogues: the target against shared negatives, not all M items.

A full softmax costs O(batch x M x d) per step, which a catalogue of millions of items
cannot afford. Here each step scores the target against K negatives shared by the batch
(drawn by popularity) and, optionally, the batch's other targets, with the logits
corrected by the log of each item's expected count in the sample (log-Q correction,
Jean et al. 2015; Yi et al. 2019, in-batch), and a negative that is the row's own target
removed (accidental hits). Evaluation never samples: it ranks all M items.
"""

import numpy as np
import tensorflow as tf

from mtd_tf.errors import ConfigError

# Negatives are drawn with probability proportional to (count + 1) ** SAMPLING_EXPONENT:
# word2vec's damping, so popular items do not crowd out the rest (and every item can
# be drawn).
SAMPLING_EXPONENT = 0.75
_MASKED = -1e9  # a removed logit: exp() of it is 0 next to any real one


class PopularitySampler:
    """Shared negatives per step, from training popularity, reproducible from (seed, step).

    Args:
      item_popularity: int [M], training counts of items 1..M.
      num_negatives: K, negatives drawn (with replacement) per step.
      in_batch: also use the batch's other targets as negatives.
      seed: the run's seed; a step's draw depends only on it and the step number, so a
        resumed run draws what the uninterrupted one would have.
    """

    def __init__(self, item_popularity, num_negatives, in_batch=False, seed=0):
        counts = np.asarray(item_popularity, dtype=np.float64)
        damped = (counts + 1.0) ** SAMPLING_EXPONENT
        self.log_probabilities = tf.constant(np.log(damped / damped.sum()), tf.float32)  # [M]
        # How likely an item is to be a target: the in-batch negatives' sampling law.
        self.log_target_shares = tf.constant(
            np.log(np.maximum(counts, 1.0) / max(counts.sum(), 1.0)), tf.float32)  # [M]
        self.num_negatives = int(num_negatives)
        self.in_batch = bool(in_batch)
        self.seed = int(seed)

    def negatives(self, step):
        """int32 [K] item ids 1..M drawn for `step` (a scalar int tensor)."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        drawn = tf.random.stateless_categorical(self.log_probabilities[None, :],
                                                self.num_negatives, seed=seed)[0]
        return tf.cast(drawn, tf.int32) + 1

    def loss(self, session, candidate_rows, targets, step):
        """Per-example sampled softmax cross-entropy, float32 [batch].

        Args:
          session: float [batch, d'], query vectors.
          candidate_rows: ids int32 [...] in 1..M -> their candidate vectors [..., d']
            (`NextItemModel.candidate_rows`: only those rows of the table are read).
          targets: int [batch], items 1..M.
          step: scalar int tensor, the optimizer's step (seeds the draw).
        """
        targets = tf.cast(targets, tf.int32)
        negatives = self.negatives(step)  # [K]
        session = tf.cast(session, tf.float32)
        target_vectors = tf.cast(candidate_rows(targets), tf.float32)  # [batch, d']
        log_expected = tf.math.log(float(self.num_negatives))
        # Each logit minus log(expected count of its item in the sample).
        target_logits = (tf.reduce_sum(session * target_vectors, axis=1)
                         - (log_expected + tf.gather(self.log_probabilities, targets - 1)))
        negative_logits = (tf.matmul(session, tf.cast(candidate_rows(negatives), tf.float32),
                                     transpose_b=True)
                           - (log_expected + tf.gather(self.log_probabilities, negatives - 1)))
        negative_logits = tf.where(negatives[None, :] == targets[:, None], _MASKED,
                                   negative_logits)  # accidental hits
        parts = [target_logits[:, None], negative_logits]
        if self.in_batch:
            batch = tf.shape(targets)[0]
            in_batch_logits = (tf.matmul(session, target_vectors, transpose_b=True)
                               - (tf.math.log(tf.cast(batch, tf.float32))
                                  + tf.gather(self.log_target_shares, targets - 1))[None, :])
            # Row b's own target (the diagonal, and any equal target) is no negative.
            parts.append(tf.where(targets[None, :] == targets[:, None], _MASKED,
                                  in_batch_logits))
        logits = tf.concat(parts, axis=1)
        return tf.reduce_logsumexp(logits, axis=1) - logits[:, 0]


def sampler_for(settings, inputs):
    """The `PopularitySampler` of a run (`TrainerConfig`, `TrainingInputs`) with
    --loss=sampled_softmax, else None; more negatives than items is a `ConfigError`."""
    if settings.loss != "sampled_softmax":
        return None
    if settings.num_negatives > inputs.num_items:
        raise ConfigError(f"--num_negatives={settings.num_negatives} is larger than the "
                          f"catalogue of {inputs.dataset_name} ({inputs.num_items} items)")
    return PopularitySampler(inputs.item_popularity, settings.num_negatives,
                             in_batch=settings.in_batch_negatives, seed=settings.seed)
