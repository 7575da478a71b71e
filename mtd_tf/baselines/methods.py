"""The baselines by name, fit and scored one way for every caller.

`python -m mtd_tf.baselines` and the experiments' Table 2 cells both call `evaluate_on_test`,
so a baseline's numbers cannot depend on which of them ran it.
"""

import dataclasses

from mtd_tf import baselines
from mtd_tf import metrics
from mtd_tf import repeats
from mtd_tf.baselines import tuning
from mtd_tf.baselines.itemknn import ItemKNN
from mtd_tf.baselines.pop import Pop
from mtd_tf.baselines.sknn import SKNN
from mtd_tf.baselines.spop import SessionPop
from mtd_tf.baselines.sr import SequentialRules
from mtd_tf.baselines.stan import STAN
from mtd_tf.baselines.vsknn import VSKNN
from mtd_tf.baselines.vstan import VSTAN
from mtd_tf.data import registry
from mtd_tf.errors import ConfigError

METHODS = {"pop": Pop, "spop": SessionPop, "itemknn": ItemKNN, "sknn": SKNN, "vsknn": VSKNN,
           "stan": STAN, "vstan": VSTAN, "sr": SequentialRules}


def settings_class(method):
    """The `Settings` dataclass of `method`, or None for a method without settings."""
    return getattr(METHODS[method], "Settings", None)


def make_setting(method, overrides):
    """`method`'s settings: its defaults with `overrides` ({name: value}) applied.

    Returns:
      the `Settings` record, or None for a method without settings (then `overrides` must
      be empty).

    Raises:
      ConfigError: a name that is not a setting of `method`, or a bad value; the message
        names the flag (`--name`).
    """
    record_class = settings_class(method)
    known = [field.name for field in dataclasses.fields(record_class)] if record_class else []
    for name in overrides:
        if name not in known:
            raise ConfigError(f"--{name} is not a setting of {method} (its settings: "
                              f"{', '.join(known) or 'none'})")
    if record_class is None:
        return None
    try:
        return record_class(**overrides)
    except ConfigError as error:
        raise ConfigError(f"--{error} (method {method})") from None


def evaluate_on_test(method, dataset, batch_size=baselines.DEFAULT_BATCH_SIZE, setting=None,
                     accumulator=None):
    """Fits `method` on all of `dataset`'s training sessions and ranks its test targets.

    Args:
      method: a key of `METHODS`.
      dataset: `SessionDataset` (from `registry.load_dataset`).
      batch_size: test prefixes scored at once (memory: batch_size x M float64).
      setting: the method's `Settings` (None: its defaults; methods without settings take
        none).
      accumulator: a `metrics.RankingMetrics` to fill (one may keep the ranks).

    Returns:
      {metric: percent} for `metrics.REPORTED_METRICS`, the "test" block of metrics.json.
    """
    extra = () if settings_class(method) is None else (setting,)
    baseline = METHODS[method](dataset.train, dataset.num_items, *extra)
    result = baselines.evaluate(
        baseline, dataset.test_prefixes, dataset.test_targets, batch_size=batch_size,
        accumulator=accumulator)
    return {name: result[name] for name in metrics.REPORTED_METRICS}


def tune_and_evaluate(method, dataset, fixed=None, metric="P@20",
                      batch_size=baselines.DEFAULT_BATCH_SIZE, accumulator=None):
    """Chooses `method`'s settings on validation, then fits them on all training sessions
    and ranks the test targets once.

    Args:
      method: a key of `METHODS` with settings.
      dataset: `SessionDataset`; tuning reads only its training sessions (and its
        defaults, for the minimum prefix length of the validation pairs).
      fixed: {setting: value} kept as given, the others searched (`tuning.tune`).
      metric: the validation metric maximised.
      batch_size: prefixes scored at once.
      accumulator: a `metrics.RankingMetrics` the test fills (one may keep the ranks).

    Returns:
      (chosen `Settings`, trials as `tuning.tune` lists them, test block).
    """
    if settings_class(method) is None:
        raise ConfigError(f"--tune: {method} has no settings to tune")
    setting, trials = tuning.tune(
        METHODS[method], dataset.train, dataset.num_items,
        registry.dataset_defaults(dataset).min_prefix_len, fixed=fixed, metric=metric,
        batch_size=batch_size)
    return setting, trials, evaluate_on_test(method, dataset, batch_size, setting, accumulator)


def fit_and_report(method, dataset, setting=None, tune=False, fixed=None, metric="P@20",
                batch_size=baselines.DEFAULT_BATCH_SIZE):
    """What the CLI prints and a Table 2 cell writes: `method` fit on all training sessions
    (its settings chosen on validation first with `tune`) and its test ranks' metrics.

    Args:
      method, dataset, batch_size: as `evaluate_on_test`.
      setting: the method's `Settings` when not tuned (None: its defaults).
      tune, fixed, metric: tune with `tune_and_evaluate(fixed=, metric=)`.

    Returns:
      ({"method", "dataset", "setting" (methods with settings), "tuning" (when tuned),
        "test", "test_by_target"}, int32 [num_pairs] every test pair's rank).
    """
    accumulator = metrics.RankingMetrics(metrics.REPORT_KS, keep_ranks=True)
    report = {"method": method, "dataset": dataset.name}
    if tune:
        setting, trials, report["test"] = tune_and_evaluate(
            method, dataset, fixed=fixed, metric=metric, batch_size=batch_size,
            accumulator=accumulator)
        report["tuning"] = {"metric": metric, "trials": trials}
    else:
        report["test"] = evaluate_on_test(method, dataset, batch_size, setting, accumulator)
    if setting is not None:
        report["setting"] = dataclasses.asdict(setting)
    ranks = accumulator.ranks()
    report["test_by_target"] = repeats.split_report(
        ranks, repeats.repeat_targets(dataset.test_prefixes, dataset.test_targets))
    return report, ranks
