"""The baselines by name, fit and scored one way for every caller.

`python -m mtd_tf.baselines` and the experiments' Table 2 cells both call `evaluate_on_test`,
so a baseline's numbers cannot depend on which of them ran it.
"""

from mtd_tf import baselines
from mtd_tf import metrics
from mtd_tf.baselines.itemknn import ItemKNN
from mtd_tf.baselines.pop import Pop
from mtd_tf.baselines.spop import SessionPop

METHODS = {"pop": Pop, "spop": SessionPop, "itemknn": ItemKNN}


def evaluate_on_test(method, dataset, batch_size=baselines.DEFAULT_BATCH_SIZE):
    """Fits `method` on all of `dataset`'s training sessions and ranks its test targets.

    Args:
      method: a key of `METHODS`.
      dataset: `SessionDataset` (from `registry.load_dataset`).
      batch_size: test prefixes scored at once (memory: batch_size x M float64).

    Returns:
      {metric: percent} for `metrics.REPORTED_METRICS`, the "test" block of metrics.json.
    """
    baseline = METHODS[method](dataset.train, dataset.num_items)
    result = baselines.evaluate(
        baseline, dataset.test_prefixes, dataset.test_targets, batch_size=batch_size)
    return {name: result[name] for name in metrics.REPORTED_METRICS}
