"""The repeat-aware head (`--repeat_head`) against the same model without it, on the
published splits: overall, on repeat targets and on new targets, with paired gaps.

    python experiments/repeat_head.py --data_dir=../shared/data --datasets=retailrocket
    python experiments/repeat_head.py --data_dir=../shared/data --datasets=retailrocket \
        --head=from_scores
    python experiments/repeat_head.py --data_dir=../shared/data --datasets=diginetica \
        --method=sasrec --settings=diginetica:batch_size=128,l2=0

For each dataset one configuration (`--settings`; by default Table 2's chosen MTD settings
on it) is trained without and with the head. Each arm is selected as Table 2 selects a
model: its run stops early on validation P@20 and keeps its best epoch, then is refit on
every training session (validation included) for that many epochs and tested once. The arm
without the head is Table 2's own `mtd` cell and refit (the same folders), so it is not
trained again. S-POP's row is beside them, for the repeat targets it serves almost
perfectly. Writes `repeat_head.json` ({dataset: {"settings", "rows": {row: test metrics},
"by_target": {row: `repeats.split_report`}, "paired": {"validated", "refit": the gap with
minus without, on all pairs and on each target kind}}}, plus "runs" and "stamp") and
`repeat_head.md` under --results_dir (`repeat_head_<model>.*` for a comparison model;
`..._from_scores` for `--head=from_scores`).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from experiments import common  # noqa: E402
from experiments import per_pair  # noqa: E402
from experiments import paper  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from experiments import selection  # noqa: E402
from mtd_tf.errors import ConfigError  # noqa: E402
from mtd_tf.metrics import REPORTED_METRICS  # noqa: E402
from mtd_tf.models.registry import MODEL_CONFIGS  # noqa: E402

# Table 2's chosen MTD settings per dataset (experiments/results/table2.md, "settings
# tried"), so that the arm without the head is its `mtd` row and refit.
TABLE2_MTD_SETTINGS = {
    "yoochoose": "embedding_dim=150,graph_writeback=rescale,graph_mix=0.2,score_scale=16,"
                 "lr_decay=0.5",
    "diginetica": "graph_writeback=rescale,graph_mix=0.2,score_scale=16,lr_decay=0.5",
    "retailrocket": "graph_writeback=rescale,graph_mix=0.2,score_scale=16,lr_decay=0.5",
}

common.define_flags()
flags.DEFINE_string("method", "mtd", "The model both arms train: mtd or a comparison model "
                    f"({', '.join(common.MODELS)}).")
flags.DEFINE_multi_string("settings", [],
                          "DATASET:key=value[,key=value] (repeatable): the configuration "
                          "both arms share on that dataset. Default for mtd: Table 2's chosen "
                          "settings; a comparison model's: its paper training recipe.")
flags.DEFINE_enum("head", "mixture", ["mixture", "from_scores"],
                  "The head of the arm with it: mixture (RepeatNet's, --repeat_head) or "
                  "from_scores (--repeat_head --repeat_from_scores).")
FLAGS = flags.FLAGS
ARMS = (("without", False), ("with", True))
HEAD_LABELS = {"mixture": "the repeat-aware head",
               "from_scores": "the repeat-aware head from the model's scores"}
ROW_LABELS = {"spop": "S-POP", "without": "without the head", "without_refit":
              "without the head, refit", "with": "with the head", "with_refit":
              "with the head, refit"}
SPLIT_KEYS = ("P@20", "MRR@20", "NDCG@20")
GAP_KEYS = ("P@10", "P@20", "MRR@10", "MRR@20")


def dataset_settings(datasets):
    """{dataset: the overrides both arms share}, from --settings and the defaults."""
    given = {}
    for spec in FLAGS.settings:
        dataset, sep, settings = spec.partition(":")
        if not sep or dataset not in datasets:
            raise ConfigError(f"bad --settings {spec!r}: expected DATASET:key=value,... with "
                              f"DATASET one of --datasets ({', '.join(datasets)})")
        given[dataset] = common.parse_overrides([settings])
    result = {}
    for dataset in datasets:
        if dataset in given:
            result[dataset] = given[dataset]
        elif FLAGS.method == "mtd" and dataset in TABLE2_MTD_SETTINGS:
            result[dataset] = common.parse_overrides([TABLE2_MTD_SETTINGS[dataset]])
        elif FLAGS.method in common.MODELS:
            result[dataset] = dict(MODEL_CONFIGS[FLAGS.method].paper_training)
        else:
            raise ConfigError(f"no default settings for {FLAGS.method} on {dataset}: give "
                              f"--settings={dataset}:key=value,...")
        for key in ("repeat_head", "repeat_from_scores"):
            if key in result[dataset]:
                raise ConfigError(f"--settings must not set {key}: the script trains both arms "
                                  "(--head picks the head)")
    return result


def results_name():
    """One file per model and head, so that one comparison does not replace another."""
    return ("repeat_head" + ("" if FLAGS.method == "mtd" else f"_{FLAGS.method}")
            + ("_from_scores" if FLAGS.head == "from_scores" else ""))


def head_settings(with_head):
    """The settings an arm adds to the shared ones (nothing without the head, so that the
    arm is Table 2's cell)."""
    if not with_head:
        return {}
    return {"repeat_head": True, **({"repeat_from_scores": True}
                                    if FLAGS.head == "from_scores" else {})}


def render_markdown(data):
    head = HEAD_LABELS[FLAGS.head]
    lines = [f"# {head[0].upper()}{head[1:]}: {reporting.METHOD_LABELS[FLAGS.method]} with "
             "and without it (test, %)", ""]
    lines += reporting.stamp_lines(data["stamp"])
    lines += reporting.smoke_warning(reporting.run_records(data))
    lines += ["", "Each arm stops early on validation P@20 and is then refit on every "
              "training session for its best validation epoch count, as in Table 2; the "
              "arm without the head is Table 2's own run. Repeat targets are next clicks "
              "that return to an item of their own prefix."]
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        entry = data[dataset]
        settings = entry["settings"] or "the defaults"
        rows = [[ROW_LABELS[row]] + [reporting.fmt(metrics.get(key))
                                     for key in REPORTED_METRICS]
                for row, metrics in _ordered(entry["rows"])]
        lines += ["", f"## {dataset}", "", f"Settings of both arms: `{settings}`.", "",
                  reporting.markdown_table(["run"] + list(REPORTED_METRICS), rows)
                  if rows else "Not run yet."]
        lines += _aim_lines(entry["rows"], paper.REPEAT_AIMS.get(dataset))
        lines += _split_lines(entry.get("by_target", {}))
        lines += _against_spop_lines(entry.get("by_target", {}))
        for kind in ("validated", "refit"):
            lines += _gap_lines(kind, entry.get("paired", {}).get(kind))
    lines += reporting.hand_written_notes(results_name())
    return "\n".join(lines)


def _ordered(mapping):
    return [(row, mapping[row]) for row in ROW_LABELS if row in mapping]


def _final_with_row(mapping):
    """The row with the head that the aims read: its refit where it has finished."""
    return next((row for row in ("with_refit", "with") if row in mapping), None)


def _aim_lines(rows, aim):
    row = _final_with_row(rows)
    if not aim or row is None:
        return []
    return ["", f"Aim ({ROW_LABELS[row]}): {reporting.aim_parts(rows[row], aim)}."]


def _split_lines(splits):
    if not splits:
        return []
    labelled = [(ROW_LABELS[row], split) for row, split in _ordered(splits)]
    return ["", "Repeat and new targets apart, ± the standard error over the part's pairs:",
            "", reporting.target_split_table(labelled, "run")]


def _against_spop_lines(splits):
    """The head's aim on repeat targets: never worse than S-POP, which ranks the prefix's
    own items first."""
    row = _final_with_row(splits)
    if row is None or "spop" not in splits:
        return []
    ours, spop = splits[row]["repeat"]["metrics"], splits["spop"]["repeat"]["metrics"]
    if ours["P@20"] is None or spop["P@20"] is None:
        return []
    parts = [f"{key} {ours[key] - spop[key]:+.2f}" for key in SPLIT_KEYS]
    return ["", f"On repeat targets, {ROW_LABELS[row]} minus S-POP: " + ", ".join(parts)
            + " points."]


def _gap_lines(kind, entry):
    if not entry:
        return []
    rows = []
    for label, figures in (("all targets", entry["all"]), ("repeat targets", entry["repeat"]),
                           ("new targets", entry["new"])):
        rows.append([label, f"{figures['pairs']:,}"] + [
            f"{figures['gap'][key]:+.2f} ± {figures['gap_standard_error'][key]:.2f}"
            for key in GAP_KEYS])
    runs = "refit runs" if kind == "refit" else "validated runs"
    return ["", f"Paired gap, with minus without the head ({runs}, same test pairs, points ± "
            "the standard error of the per-pair differences):", "",
            reporting.markdown_table(["targets", "pairs"] + list(GAP_KEYS), rows)]


def main(argv):
    del argv
    if FLAGS.method not in ("mtd",) + common.MODELS:
        raise ConfigError(f"--method must be mtd or one of {', '.join(common.MODELS)}, "
                          f"got {FLAGS.method!r}")
    settings = dataset_settings(FLAGS.datasets)
    stamp = provenance.make_stamp()
    results = reporting.ResultsFile(FLAGS.results_dir, results_name())
    runner = common.runner_from_flags(stamp, results.name)
    validated = {(dataset, arm): runner.cell(dataset, FLAGS.method, **settings[dataset],
                                             **head_settings(head))
                 for dataset in FLAGS.datasets for arm, head in ARMS}
    spop = {dataset: runner.cell(dataset, "spop") for dataset in FLAGS.datasets}
    repeat_flags = per_pair.test_repeat_flags(runner.data_dir, FLAGS.datasets)
    refits = {}
    found = results.load()

    def publish(records):
        data = results.load()
        data["stamp"] = stamp
        for dataset in FLAGS.datasets:
            rows = {"spop": spop[dataset]}
            for arm, _ in ARMS:
                rows[arm] = validated[dataset, arm]
                if (dataset, arm) in refits:
                    rows[selection.refit_row(arm)] = refits[dataset, arm]
            finished = {row: cell for row, cell in rows.items() if records.get(cell)}
            earlier = found.get(dataset, {})
            repeat = repeat_flags.get(dataset)
            entry = {"settings": ",".join(f"{key}={value}" for key, value in
                                          sorted(settings[dataset].items())),
                     "rows": {row: records[cell]["test"] for row, cell in finished.items()},
                     "by_target": {}, "paired": {}}
            for row, cell in finished.items():
                split = per_pair.target_split(records[cell], FLAGS.runs_dir, repeat,
                                              earlier.get("by_target", {}).get(row))
                if split:
                    entry["by_target"][row] = split
            for kind, (with_row, without_row) in (("validated", ("with", "without")),
                                                  ("refit", ("with_refit", "without_refit"))):
                if with_row in finished and without_row in finished:
                    gap = per_pair.paired_gap_by_target(
                        records[finished[with_row]], records[finished[without_row]],
                        FLAGS.runs_dir, repeat, earlier.get("paired", {}).get(kind))
                    if gap:
                        entry["paired"][kind] = gap
            data[dataset] = entry
            reporting.update_runs(data, dataset, {cell.name: records[cell]
                                                  for cell in finished.values()})
        results.write(data, render_markdown(data))

    cells = list(spop.values()) + list(validated.values())
    records = common.resolve_cells(runner, cells, publish, FLAGS.report_only)
    for (dataset, arm), cell in validated.items():
        refit = selection.refit_cell(runner, [cell], records)
        if refit is not None:
            refits[dataset, arm] = refit
    common.resolve_refits(runner, refits.values(), records, publish, FLAGS.report_only)
    print(f"wrote {results.json_path} and {results.md_path}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
