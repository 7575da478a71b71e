"""Evaluates a baseline: `python -m mtd_tf.baselines --method=NAME [--SETTING=VALUE ...] [--tune]`.

Methods: pop, spop, itemknn (the paper's Table 2; no settings), sknn, vsknn, stan, vstan, sr
(each with settings; a flag per setting, generated from the methods' `Settings` records; a
flag left unset takes the method's default).

Fits the baseline on all training sessions of --dataset, ranks every test target among all
M items (DESIGN.md section 5) and prints one JSON line:
{"method", "dataset", "setting" (methods with settings), "tuning" (with --tune),
 "test": {"P@5", "P@10", "P@20", "MRR@5", "MRR@10", "MRR@20", "NDCG@20"},
 "test_by_target": {"repeat", "new"}}
with metrics in percent, under the keys of the "test" and "test_by_target" blocks of the
model's metrics.json (`mtd_tf.repeats`: targets already in their prefix, and the others).

With --tune the settings are first chosen on the validation split (`mtd_tf.baselines.tuning`:
the method's grid, fit on the first 90% of training sessions, scored on the last 10%);
settings given as flags stay fixed. The chosen setting is then fit on all training sessions
and tested once. "tuning" holds the metric and every setting tried with its validation
scores.
"""

import dataclasses
import json

from absl import flags

from mtd_tf import baselines
from mtd_tf import cli
from mtd_tf.baselines import methods
from mtd_tf.data import registry
from mtd_tf.metrics import REPORTED_METRICS

cli.define_data_flags()
flags.DEFINE_enum("method", None, list(methods.METHODS), "Baseline to fit and evaluate.")
flags.DEFINE_integer("batch_size", baselines.DEFAULT_BATCH_SIZE,
                     "Test prefixes scored at once (memory: batch_size x M float64).",
                     lower_bound=1)
flags.DEFINE_bool("tune", False, "Choose the method's settings on the validation split first.")
flags.DEFINE_enum("tune_metric", "P@20", list(REPORTED_METRICS),
                  "Validation metric --tune maximises.")
flags.mark_flag_as_required("method")
FLAGS = flags.FLAGS


def _define_setting_flags():
    """One flag per setting name of any method, unset by default (= the method's default)."""
    fields = {}
    for method in methods.METHODS:
        record_class = methods.settings_class(method)
        for field in dataclasses.fields(record_class) if record_class else ():
            fields.setdefault(field.name, (field, []))[1].append(f"{method} {field.default}")
    define = {int: flags.DEFINE_integer, float: flags.DEFINE_float}
    for name, (field, defaults) in fields.items():
        help_text = f"{field.metadata['help']} Default: {', '.join(defaults)}."
        define.get(field.type, flags.DEFINE_string)(name, None, help_text)
    return tuple(fields)


SETTING_FLAGS = _define_setting_flags()


def main(argv):
    del argv
    overrides = {name: FLAGS[name].value for name in SETTING_FLAGS
                 if FLAGS[name].value is not None}
    setting = methods.make_setting(FLAGS.method, overrides)
    dataset = registry.load_dataset(
        FLAGS.dataset, registry.resolve_data_dir(FLAGS.data_dir), seed=FLAGS.seed)
    report, _ = methods.fit_and_report(
        FLAGS.method, dataset, setting=setting, tune=FLAGS.tune, fixed=overrides,
        metric=FLAGS.tune_metric, batch_size=FLAGS.batch_size)
    print(json.dumps(report))


if __name__ == "__main__":
    cli.run_app(main)
