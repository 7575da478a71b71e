"""The ranking-time prior on the session's own items, chosen on validation for Table 2's
chosen run of each model, and that model's refit tested with and without it.

    python experiments/repeat_prior.py --data_dir=../shared/data --datasets=yoochoose,retailrocket
    python experiments/repeat_prior.py --data_dir=../shared/data --datasets=retailrocket \
        --methods=mtd --selection_run=retailrocket:mtd:mtd-epochs=1-graph_mix=0.2-...
    python experiments/repeat_prior.py --data_dir=../shared/data --datasets=retailrocket \
        --methods=mtd --head_run=retailrocket:mtd:SELECTION_FOLDER:REFIT_FOLDER

For each dataset and method, Table 2's selection (`table2.json` under --results_dir: the
chosen run and its refit) names two run folders under --runs_dir; `--selection_run`
names another finished run of the chosen settings where Table 2's selection folder is
gone (say one trained for its best epoch count alone). `--head_run` adds the same
model trained with `--repeat_head` (a selection run and its refit, as
`experiments/repeat_head.py` trains them): its prior is added to the head's mixture, and
its test is also paired with the plain model's refit. The prior is chosen on the
selection run's validation pairs (`mtd_tf.serving.repeat_prior_tuning`), the refit is
exported with it beside its own export, and the two exports are read on the same test
pairs (`mtd_tf.serving.evaluation.compare_served`): overall, on repeat and on new
targets, with the paired gap. S-POP's repeat targets (Table 2's) are beside them. A pair
of runs measured before on the same grid of priors is not measured again (one measured on
an earlier grid is, where its runs remain), and --report_only measures nothing.
Writes `repeat_prior.json` ({dataset: {method: entry}}, "stamp") and `repeat_prior.md`
under --results_dir.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from experiments import common  # noqa: E402
from experiments import paper  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.errors import ConfigError  # noqa: E402
from mtd_tf.metrics import GAIN_METRICS  # noqa: E402
from mtd_tf.serving import repeat_prior_search  # noqa: E402

common.define_flags()
flags.DEFINE_list("methods", ["mtd", *common.MODELS], "Models whose Table 2 runs get a prior.")
flags.DEFINE_multi_string("selection_run", [],
                          "DATASET:METHOD:FOLDER (repeatable): the finished run under "
                          "--runs_dir/main/DATASET whose validation pairs choose METHOD's "
                          "prior, in place of Table 2's selection folder.")
flags.DEFINE_multi_string("head_run", [],
                          "DATASET:METHOD:SELECTION:REFIT (repeatable): finished runs under "
                          "--runs_dir/main/DATASET of METHOD with the repeat head, measured "
                          "as one more entry (METHOD+head).")
flags.DEFINE_multi_string("no_loss_on", [],
                          "DATASET:METRIC (repeatable): on DATASET, choose the prior among "
                          "those that keep the model's validation METRIC (e.g. "
                          "yoochoose:P@20; `python -m mtd_tf.serving.tune_repeat_prior "
                          "--no_loss_on`).")
FLAGS = flags.FLAGS
RESULTS_NAME = "repeat_prior"
PRIOR_EXPORT = "export_repeat_prior"  # beside the refit's own export, in its run folder
KEYS = ("P@20", "MRR@20")
HEAD_SUFFIX = "+head"  # the entry of a method's runs with the repeat head


def run_specs(flag, specs, folders, datasets, methods):
    """{(dataset, method): (folder, ...)} from a flag's DATASET:METHOD:FOLDER... values."""
    chosen = {}
    for spec in specs:
        parts = spec.split(":", 1 + len(folders))
        if len(parts) != 2 + len(folders) or parts[0] not in datasets or parts[1] not in methods:
            raise ConfigError(f"bad --{flag} {spec!r}: expected DATASET:METHOD:"
                              f"{':'.join(folders)} with DATASET of --datasets and METHOD of "
                              "--methods")
        chosen[parts[0], parts[1]] = tuple(parts[2:])
    return chosen


def guarded_metrics(specs, datasets):
    """{dataset: [metric, ...]} from --no_loss_on's DATASET:METRIC values."""
    guarded = {}
    for spec in specs:
        dataset, _, metric = spec.partition(":")
        if dataset not in datasets or metric not in GAIN_METRICS:
            raise ConfigError(f"bad --no_loss_on {spec!r}: expected DATASET:METRIC with "
                              "DATASET of --datasets and METRIC one of "
                              f"{', '.join(GAIN_METRICS)}")
        guarded.setdefault(dataset, []).append(metric)
    return guarded


def run_pairs(table2, datasets, methods):
    """{(dataset, entry name): (selection folder, refit folder, plain refit folder or None)}:
    Table 2's selection of each method, with --selection_run's folders in place (methods
    Table 2 has not refit are left out), and --head_run's runs paired with that refit."""
    overrides = run_specs("selection_run", FLAGS.selection_run, ["FOLDER"], datasets,
                          methods)
    heads = run_specs("head_run", FLAGS.head_run, ["SELECTION", "REFIT"], datasets, methods)
    pairs = {}
    for dataset in datasets:
        run = os.path.join(FLAGS.runs_dir, "main", dataset)
        for method in methods:
            entry = table2.get("selection", {}).get(dataset, {}).get(method)
            if not (entry and entry.get("refit")):
                continue
            selection = overrides.get((dataset, method), (entry["chosen"],))[0]
            plain_refit = os.path.join(run, entry["refit"]["run"])
            pairs[dataset, method] = (os.path.join(run, selection), plain_refit, None)
            if (dataset, method) in heads:
                head_selection, head_refit = heads[dataset, method]
                pairs[dataset, method + HEAD_SUFFIX] = (
                    os.path.join(run, head_selection), os.path.join(run, head_refit),
                    plain_refit)
    return pairs


def finished(run_dir):
    return os.path.isfile(os.path.join(run_dir, "metrics.json"))


def measure(dataset, selection, refit, plain_refit=None, no_loss_on=()):
    """The entry of one model: the prior chosen on `selection` (keeping its validation
    `no_loss_on` metrics), and `refit`'s test with and without it (and with it against
    `plain_refit`, the model without the head, if given)."""
    # pylint: disable=import-outside-toplevel
    from mtd_tf.data import registry
    from mtd_tf.serving import evaluation
    from mtd_tf.serving import export
    from mtd_tf.serving import repeat_prior_tuning
    from mtd_tf.serving import trained_run

    prior_export = os.path.join(refit, PRIOR_EXPORT)
    tuned = repeat_prior_tuning.tune(selection, export_dir=prior_export, export_from=refit,
                                     data_dir=FLAGS.data_dir, no_loss_on=no_loss_on)
    data = registry.load_dataset(dataset, registry.resolve_data_dir(FLAGS.data_dir))

    def served(export_dir):
        return evaluation.served_ranks(export.load_export(export_dir), data, batch_size=1024)

    with_prior = served(prior_export)  # read once, compared with one or two exports
    test = evaluation.compare_served(with_prior, served(os.path.join(refit, "export")), data)
    capped = trained_run.read_config(refit, FLAGS.data_dir).trainer.max_train_batches
    entry = {"selection_run": os.path.basename(selection), "refit_run": os.path.basename(refit),
             "max_train_batches": capped,
             "chosen": tuned["chosen"], "score_unit": tuned["score_unit"],
             "objective": tuned["objective"], "no_loss_on": tuned["no_loss_on"],
             "grid_points": tuned["grid_points"],
             "valid": {"without": tuned["without"], "with": tuned["with"]},
             "test": test}
    if plain_refit:
        against = evaluation.compare_served(
            with_prior, served(os.path.join(plain_refit, "export")), data)
        entry["against_plain"] = {"plain_refit_run": os.path.basename(plain_refit),
                                  "gap": against["gap"],
                                  "gap_standard_error": against["gap_standard_error"]}
    return entry


def render_markdown(data, table2):
    lines = ["# A ranking-time prior on the session's own items, chosen on validation "
             "(test, %)", ""]
    lines += reporting.stamp_lines(data["stamp"], provenance=(
        "Every number below was measured by this script on the runs it names (see each "
        "entry's `selection_run` and `refit_run` in the JSON)."))
    lines += reporting.smoke_warning([
        {"config": {"max_train_batches": entry.get("max_train_batches")}}
        for dataset in reporting.dataset_keys(data) for entry in data[dataset].values()])
    lines += ["", "Each model is Table 2's chosen run: its prior (a bonus of `b + c log n + "
              "r log(1 + later)` on the score of each item already in the session, given "
              "only to the `limit` items of highest score plus bonus, or to all) is "
              "chosen on that run's validation pairs for MRR@20 (among the priors that keep the "
              "validation metrics the prior column names, if any), over a grid in units of the "
              "run's median gap from its best score to a prefix item's score; its refit is "
              "then exported with the prior and both exports are read on the same test "
              "pairs. Repeat targets are next clicks that return to an item of their own "
              "prefix. A limit of `-` marks a prior chosen before limits were on the grid "
              "(every item lifted)."]
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        entries = data[dataset]
        lines += ["", f"## {dataset}", ""]
        rows, splits, aims, against_plain = [], [], [], []
        aim = paper.REPEAT_AIMS.get(dataset)
        for method in sorted(entries, key=_entry_order):
            entry = entries[method]
            test, label = entry["test"], _entry_label(method)
            valid = entry["valid"]
            rows.append([label, _prior_cell(entry),
                         f"{entry['score_unit']:.2f}",
                         _pair(valid["without"]["metrics"], valid["with"]["metrics"], "MRR@20")]
                        + [_pair(test["baseline_test"], test["test"], key) for key in KEYS]
                        + [f"{test['gap'][key]:+.2f} ± {test['gap_standard_error'][key]:.2f}"
                           for key in KEYS])
            splits += [(f"{label}, refit", test["baseline_test_by_target"]),
                       (f"{label}, refit with the prior", test["test_by_target"])]
            if aim:
                aims.append(f"Aim, {label} refit with the prior: "
                            f"{reporting.aim_parts(test['test'], aim)}.")
            if "against_plain" in entry:
                against_plain.append(_against_plain_line(label, entry["against_plain"]))
        lines.append(reporting.markdown_table(
            ["model", "prior b / c / r / limit", "unit", "valid MRR@20 without → with",
             "test P@20 without → with", "test MRR@20 without → with", "paired gap P@20",
             "paired gap MRR@20"], rows))
        if aims or against_plain:
            lines += [""] + [f"- {line}" for line in aims + against_plain]
        spop = table2.get("by_target", {}).get(dataset, {}).get("spop")
        if spop:
            splits.append(("S-POP (Table 2)", spop))
        lines += ["", "Repeat and new targets apart, ± the standard error over the part's "
                  "pairs:", "", reporting.target_split_table(splits, "run")]
    lines += reporting.hand_written_notes(RESULTS_NAME)
    return "\n".join(lines)


def _entry_order(name):
    """Table 2's method order, each method's entry with the head after its own."""
    base = name.removesuffix(HEAD_SUFFIX)
    return ("mtd", *common.MODELS).index(base), name != base


def _entry_label(name):
    base = name.removesuffix(HEAD_SUFFIX)
    label = reporting.METHOD_LABELS.get(base, base)
    return label if name == base else f"{label} with the repeat head"


def _against_plain_line(label, against):
    gaps = ", ".join(f"{key} {against['gap'][key]:+.2f} ± "
                     f"{against['gap_standard_error'][key]:.2f}" for key in KEYS)
    return (f"{label}, refit with the prior, minus the refit without the head or the prior "
            f"(`{against['plain_refit_run']}`; paired, same test pairs): {gaps}.")


def _prior_cell(entry):
    """The chosen b / c / r / limit, and the validation metrics the choice had to keep."""
    chosen = dict(entry["chosen"])
    limit = chosen.pop("repeat_lift_limit", None)
    weights = [f"{value:.2f}" for value in chosen.values()]
    cell = " / ".join(weights + ["-" if limit is None else str(limit or "all")])
    kept = entry.get("no_loss_on")
    return f"{cell} (keeping {', '.join(kept)})" if kept else cell


def _pair(without, with_prior, key):
    return f"{reporting.fmt(without[key])} → {reporting.fmt(with_prior[key])}"


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.methods) - {"mtd", *common.MODELS})
    if unknown:
        raise ConfigError(f"--methods: {unknown[0]!r} is not mtd or a comparison model")
    data_dir = registry.resolve_data_dir(FLAGS.data_dir)
    for dataset in FLAGS.datasets:
        common.check_dataset(dataset, data_dir)
    guarded = guarded_metrics(FLAGS.no_loss_on, FLAGS.datasets)
    table2 = reporting.ResultsFile(FLAGS.results_dir, "table2").load()
    results = reporting.ResultsFile(FLAGS.results_dir, RESULTS_NAME)
    data = results.load()
    data["stamp"] = provenance.make_stamp()
    grid_points = len(repeat_prior_search.grid(1.0))  # the same for every unit
    for (dataset, method), (selection, refit, plain_refit) in run_pairs(
            table2, FLAGS.datasets, FLAGS.methods).items():
        no_loss_on = guarded.get(dataset, [])
        earlier = data.get(dataset, {}).get(method)
        if earlier and (earlier["selection_run"], earlier["refit_run"],
                        earlier.get("no_loss_on", []), earlier["grid_points"]) == (
                os.path.basename(selection), os.path.basename(refit), no_loss_on,
                grid_points):
            continue
        if FLAGS.report_only:
            continue
        if not (finished(selection) and finished(refit)):
            logging.info("%s %s: not measured (%s or %s is not a finished run)", dataset,
                         method, selection, refit)
            continue
        data.setdefault(dataset, {})[method] = measure(dataset, selection, refit, plain_refit,
                                                       no_loss_on)
        results.write(data, render_markdown(data, table2))
    results.write(data, render_markdown(data, table2))
    print(f"wrote {results.json_path} and {results.md_path}")


if __name__ == "__main__":
    cli.run_app(main)
