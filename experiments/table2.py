"""Tables 2-3 of the paper: MTD and its variants against POP, S-POP, Item-KNN, the tuned
SKNN, V-SKNN, STAN, VSTAN and SR, and the neural comparison models (GRU4Rec, NARM, STAMP,
SASRec, SR-GNN, CSRM, CoSAN; `mtd_tf.models`).

    python experiments/table2.py --data_dir=../shared/data
    python experiments/table2.py --data_dir=../shared/data --datasets=yoochoose \
        --methods=mtd --mtd_candidate=graph_writeback=rescale,graph_mix=0.2
    python experiments/table2.py --data_dir=../shared/data --datasets=diginetica \
        --methods=srgnn --model_candidate=srgnn:score_scale=16 --refit

Writes `table2.json` ({dataset: {method: {"P@5", ..., "NDCG@20"}}}, test metrics in
percent, plus "paper", "selection", "runs", "test_pairs", "paired", "by_target" and
"stamp") and `table2.md` (ours beside the paper's, with the test-sampling standard error of
P@K, the paired gap between MTD and the strongest baseline, and every row's metrics on
repeat and new targets apart, from the runs' kept test ranks: `per_pair.py`) under
--results_dir.
Every MTD run picks its best epoch on validation P@20 and reads the test split once
(mtd_tf.training.loop). `mtd` is the candidate with the best validation P@20 among the
default settings (unless --mtd_default=false) and each --mtd_candidate, of those finished;
the table shows the chosen one's test numbers only, though every run's record, test
included, is kept under "runs". Each comparison model is chosen the same way among its
paper's training recipe (`paper_training` of its config) and its --model_candidate
settings. POP, S-POP and Item-KNN have no settings and are fit on
all training sessions; SKNN, V-SKNN, STAN, VSTAN and SR are tuned on validation first
(`mtd_tf.baselines.tuning`), then fit on all training sessions.
With --refit, once every candidate has finished, the chosen one is trained again on every
training session for its best validation epoch count (`refit_epochs`) and tested once: row
`mtd_refit` (shown, like `mtd`, for the choice among the finished candidates whenever its
refit has finished), and `<model>_refit` for each comparison model. The paper's models saw all training sessions; ours hold out 10% for
validation, and the refit gives those sessions back without letting the test choose
anything.
Finished cells are skipped; unfinished runs resume from their checkpoints.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from experiments import common  # noqa: E402
from experiments import selection  # noqa: E402
from experiments import per_pair  # noqa: E402
from experiments import paper  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from mtd_tf.errors import ConfigError  # noqa: E402
from mtd_tf.metrics import REPORTED_METRICS  # noqa: E402
from mtd_tf.models.registry import MODEL_CONFIGS  # noqa: E402

VARIANT_METHODS = ["lo", "va", "at", "ga"]
common.define_flags()
flags.DEFINE_list("methods",
                  list(common.BASELINES) + ["mtd"] + list(common.MODELS) + VARIANT_METHODS,
                  "Methods: baselines pop, spop, itemknn (the paper's), sknn, vsknn, stan, "
                  "vstan, sr (tuned on validation first); MTD variants mtd, lo, va, at, ga; "
                  f"comparison models {', '.join(common.MODELS)}.")
flags.DEFINE_multi_string("mtd_candidate", [],
                          "Extra settings for `mtd` as key=value[,key=value] (repeatable); "
                          "`mtd` reports the candidate with the best validation P@20.")
flags.DEFINE_multi_string("model_candidate", [],
                          "Extra settings for a comparison model as MODEL:key=value[,key=value] "
                          "(repeatable), e.g. srgnn:lr_decay=0.1,lr_decay_every=3; the model's "
                          "row reports its candidate with the best validation P@20.")
flags.DEFINE_bool("model_default", True,
                  "Count each comparison model's paper training recipe (its config's "
                  "`paper_training`: learning rate, its decay, batch size, L2) as a candidate; "
                  "False trains only the --model_candidate settings.")
flags.DEFINE_bool("mtd_default", True,
                  "Count the default settings as an `mtd` candidate. False trains only the "
                  "--mtd_candidate settings, e.g. to spend a long dataset's hours on them first.")
flags.DEFINE_bool("refit", False,
                  "Also refit each dataset's chosen `mtd` (and comparison model) on every "
                  "training session for its best validation epoch count, reported as "
                  "`mtd_refit` (`<model>_refit`).")
flags.DEFINE_bool("train_refit_here", False,
                  "Train the refit in --runs_dir even where its record is published: its "
                  "folder (export, test ranks for the paired gap) stays where it was trained.")
flags.DEFINE_list("train_here", [],
                  "Baselines (of --methods) evaluated in --runs_dir even where their records "
                  "are published, for their test ranks (the repeat/new split), e.g. "
                  "pop,spop,itemknn.")
FLAGS = flags.FLAGS
# Each chosen row followed by its refit.
ROW_LABELS = {row: label for method, label in reporting.METHOD_LABELS.items()
              for row, label in ((method, label), (selection.refit_row(method), f"{label}, refit"))
              if row == method or method in selection.SELECTED}


def candidate_settings():
    """{selected method: [settings of each candidate]} from the flags: a comparison model's
    default candidate is its paper's training recipe (`paper_training`)."""
    candidates = {method: [dict(MODEL_CONFIGS[method].paper_training)] if FLAGS.model_default
                  else [] for method in common.MODELS}
    candidates["mtd"] = ([{}] if FLAGS.mtd_default else []) + [
        common.parse_overrides([spec]) for spec in FLAGS.mtd_candidate]
    if "mtd" in FLAGS.methods and not candidates["mtd"]:
        raise ConfigError("--mtd_default=false leaves `mtd` no settings: "
                          "give at least one --mtd_candidate")
    for spec in FLAGS.model_candidate:
        model, sep, settings = spec.partition(":")
        if not sep or model not in common.MODELS:
            raise ConfigError(f"bad --model_candidate {spec!r}: expected MODEL:key=value,... "
                              f"with MODEL one of {', '.join(common.MODELS)}")
        candidates[model].append(common.parse_overrides([settings]))
    empty = [model for model in common.MODELS if model in FLAGS.methods and not candidates[model]]
    if empty:
        raise ConfigError(f"--model_default=false leaves {empty[0]} no settings: give at "
                          f"least one --model_candidate={empty[0]}:...")
    return candidates


def plan_cells(runner):
    """Baselines first (minutes), then MTD on every dataset, then the comparison models,
    then the variants."""
    unknown = set(FLAGS.methods) - set(reporting.METHOD_LABELS)
    if unknown:
        raise ConfigError(f"unknown --methods {sorted(unknown)}")
    candidates = candidate_settings()
    cells = []
    for group in (common.BASELINES, ("mtd",), common.MODELS, VARIANT_METHODS):
        for method in (m for m in group if m in FLAGS.methods):
            for dataset in FLAGS.datasets:
                for overrides in candidates.get(method, [{}]):
                    cell = runner.cell(dataset, method, **overrides)
                    if cell not in cells:
                        cells.append(cell)
    return cells


def render_markdown(data):
    lines = ["# Tables 2-3: MTD against the baselines (test, %)", ""]
    lines += reporting.stamp_lines(data["stamp"], reporting.FROM_RUN_METRICS + (
        " The only typed-in numbers are the rows labelled *paper*."))
    lines += reporting.smoke_warning(reporting.run_records(data))
    headers = ["method"] + list(REPORTED_METRICS)
    # The paper's datasets always, so its numbers show before ours exist.
    datasets = list(common.PAPER_DATASETS) + [
        name for name in reporting.dataset_keys(data) if name not in common.PAPER_DATASETS]
    for dataset in datasets:
        ours, reference = data.get(dataset, {}), data.get("paper", {}).get(dataset, {})
        rows = []
        for row, label in ROW_LABELS.items():
            method = _method_of(row)
            if row not in ours and row not in reference:
                continue
            rows.append([label] + [reporting.fmt(ours.get(row, {}).get(key))
                                   for key in REPORTED_METRICS])
            if row in reference:
                rows.append([f"{label}, *paper*"] + [
                    reporting.fmt(reference[row].get(key)) for key in REPORTED_METRICS])
            if method in selection.SELECTED and row in ours and method in reference:
                rows.append([f"{label} gap (ours - paper)"] + [
                    _signed(ours[row][key] - reference[method][key])
                    if key in reference[method] else reporting.MISSING
                    for key in REPORTED_METRICS])
        pending = [] if ours else ["", "Not run yet."]
        lines += ["", f"## {dataset}", "", reporting.markdown_table(headers, rows)] + pending
        for method in selection.SELECTED:
            for row in (method, selection.refit_row(method)):
                lines += _shortfall_lines(ROW_LABELS[row], ours.get(row), reference.get(method))
        lines += _own_paper_lines(ours, paper.OWN_PAPERS.get(dataset, {}))
        lines += _sampling_error_lines(ours.get("mtd"), data.get("test_pairs", {}).get(dataset))
        chosen = data.get("selection", {}).get(dataset, {})
        for method in selection.SELECTED:
            lines += _selection_lines(method, chosen.get(method))
        lines += _paired_lines(data.get("paired", {}).get(dataset))
        lines += _target_split_lines(data.get("by_target", {}).get(dataset))
    lines += reporting.hand_written_notes("table2")
    return "\n".join(lines)


def _method_of(row):
    """The method a row shows: `srgnn` for `srgnn_refit`."""
    return row[:-len(selection.REFIT_SUFFIX)] if row.endswith(selection.REFIT_SUFFIX) else row


def _signed(value):
    return f"{value:+.2f}"


def _shortfall_lines(label, ours, reference):
    if not ours or not reference:
        return []
    short = [f"{key} by {reference[key] - ours[key]:.2f} points" for key in REPORTED_METRICS
             if key in reference and ours[key] < reference[key]]
    if not short:
        return ["", f"{label} meets or beats every figure the paper reports here."]
    return ["", f"{label} is short of the paper on " + ", ".join(short) + "."]


def _own_paper_lines(ours, own_papers):
    """Each comparison model's rows beside the figures of the paper that proposed or first
    ran it on these splits: more than about 1.5 points short means a bug is looked for."""
    rows = []
    for method, theirs in own_papers.items():
        for row in (method, selection.refit_row(method)):
            if row in ours:
                rows.append([ROW_LABELS[row]] + [
                    f"{reporting.fmt(ours[row][key])} vs {reporting.fmt(theirs[key])} "
                    f"({_signed(ours[row][key] - theirs[key])})" for key in ("P@20", "MRR@20")])
    if not rows:
        return []
    return ["", "Against their own papers' figures on these splits (SR-GNN's paper, Table 2; "
            "ours vs theirs, gap):", "",
            reporting.markdown_table(["model", "P@20", "MRR@20"], rows)]


def _sampling_error_lines(ours, test_pairs):
    if not ours or not test_pairs:
        return []
    keys = [key for key in REPORTED_METRICS if key.startswith("P@")]
    errors = " / ".join(f"±{reporting.binomial_standard_error(ours[key], test_pairs):.2f}"
                        for key in keys)
    return ["", f"Test sampling alone: on these {test_pairs:,} test pairs, MTD's "
            f"{' / '.join(keys)} carry a standard error of {errors} points (binomial: how far "
            "each would move on another test set of this size). A gap between two runs on "
            "the same pairs has its own, paired, standard error, smaller the more the runs "
            "agree (`python -m mtd_tf.serving.evaluate --baseline_export_dir=...` measures it); "
            "seed-to-seed spread comes on top."]


def _selection_lines(method, chosen):
    if not chosen:
        return []
    # By name: the JSON is saved with sorted keys, so any other order would change with
    # the invocation that last wrote the file.
    rows = [[name + (" (chosen)" if name == chosen["chosen"] else ""),
             reporting.fmt(valid and valid["P@20"]), reporting.fmt(valid and valid["MRR@20"])]
            for name, valid in sorted(chosen["candidates"].items())]
    lines = ["", f"{ROW_LABELS[method]} settings tried, chosen on validation P@20 (every run "
             "reads the test split once, at its end, but the choice never looks at it, and the "
             "table above shows the chosen run's only):", "",
             reporting.markdown_table(["run", "valid P@20", "valid MRR@20"], rows)]
    if chosen.get("refit"):
        epochs = chosen["refit"]["epochs"]
        lines += ["", f"{ROW_LABELS[selection.refit_row(method)]}: `{chosen['refit']['run']}`, "
                  "the chosen settings trained on every training session (validation included) for "
                  f"{epochs} epoch{'' if epochs == 1 else 's'}, the chosen run's best "
                  "validation epoch; its test split was read once, and nothing was chosen on it."]
    return lines


def _paired_lines(entry):
    if not entry:
        return []
    gaps = ", ".join(f"{key} {_signed(entry['gap'][key])} ± {entry['gap_standard_error'][key]:.2f}"
                     for key in ("P@10", "P@20", "MRR@10", "MRR@20"))
    return ["", f"Paired gap, {ROW_LABELS[entry['model_row']]} minus "
            f"{ROW_LABELS[entry['baseline_row']]} (the other method with the best test P@20), on the "
            f"same {entry['pairs']:,} test pairs, in points ± the standard error of the "
            f"per-pair differences: {gaps}."]


def _target_split_lines(splits):
    if not splits:
        return []
    labelled = [(label, splits[method]) for method, label in ROW_LABELS.items()
                if splits.get(method)]
    return ["", "Repeat targets (the next click returns to an item of its own prefix) and new "
            "targets apart, from each run's kept test ranks; ± the standard error over the "
            "part's pairs:", "", reporting.target_split_table(labelled, "method")]


def target_splits(rows, records, repeat, earlier):
    """{row: `per_pair.target_split`} of every row (`selection.row_cells`) whose run's
    ranks are known."""
    splits = {}
    for row, cell in rows.items():
        entry = per_pair.target_split(records[cell], FLAGS.runs_dir, repeat, earlier.get(row))
        if entry:
            splits[row] = entry
    return splits


def paired_entry(rows, records, view, num_pairs, earlier):
    """Table 2's paired gap between MTD's final row and the strongest other method (a
    baseline or a comparison model's row), else None."""
    others = common.BASELINES + tuple(
        row for method in common.MODELS for row in (method, selection.refit_row(method)))
    baseline_row = per_pair.strongest(view, others)
    model_row = next((row for row in per_pair.MODEL_ROWS if row in view), None)
    if baseline_row is None or model_row is None:
        return None
    entry = per_pair.paired_gap(records[rows[model_row]], records[rows[baseline_row]],
                                FLAGS.runs_dir, num_pairs, earlier)
    return entry and dict(entry, model_row=model_row, baseline_row=baseline_row)


def main(argv):
    del argv
    stamp = provenance.make_stamp()
    results = reporting.ResultsFile(FLAGS.results_dir, "table2")
    runner = common.runner_from_flags(stamp, results.name)
    cells = plan_cells(runner)
    unknown = set(FLAGS.train_here) - set(common.BASELINES)
    if unknown:
        raise ConfigError(f"--train_here takes baselines, not {sorted(unknown)}")
    runner.train_here.update(cell for cell in cells if cell.method in FLAGS.train_here)
    refits = {}  # (dataset, method) -> refit of the chosen candidate, once one has finished
    repeat_flags = per_pair.test_repeat_flags(runner.data_dir, FLAGS.datasets)
    pair_counts = {dataset: len(flags) for dataset, flags in repeat_flags.items()}
    # As found: a publish before the refits are known must not lose the refit's figures.
    found = results.load()
    earlier_gaps, earlier_splits = found.get("paired", {}), found.get("by_target", {})

    def publish(records):
        data = results.load()
        data["stamp"], data["paper"] = stamp, paper.TABLE2
        data.setdefault("test_pairs", {}).update(pair_counts)
        for dataset in FLAGS.datasets:
            dataset_cells = [cell for cell in cells + list(refits.values())
                             if cell.dataset == dataset]
            view, chosen = selection.dataset_view(dataset_cells, records)
            rows = selection.row_cells(dataset_cells, records)
            data[dataset] = view
            data.setdefault("selection", {})[dataset] = chosen
            entry = paired_entry(rows, records, view, data["test_pairs"].get(dataset),
                                 earlier_gaps.get(dataset))
            data.setdefault("paired", {}).pop(dataset, None)
            if entry:
                data["paired"][dataset] = entry
            data.setdefault("by_target", {})[dataset] = target_splits(
                rows, records, repeat_flags.get(dataset), earlier_splits.get(dataset, {}))
            reporting.update_runs(data, dataset, {cell.name: records[cell]
                                                  for cell in dataset_cells})
        results.write(data, render_markdown(data))

    records = common.resolve_cells(runner, cells, publish, FLAGS.report_only)
    if FLAGS.refit:
        for method in (m for m in selection.SELECTED if m in FLAGS.methods):
            for dataset in FLAGS.datasets:
                candidates = selection.candidates_of(
                    [cell for cell in cells if cell.dataset == dataset], method)
                cell = selection.refit_cell(runner, candidates, records)
                # Trained only once the choice can no longer change; a finished refit of
                # the current choice is shown before that, as the chosen row is.
                settled = all(records.get(candidate) for candidate in candidates)
                if cell is not None and (settled or runner.finished_record(cell)):
                    refits[dataset, method] = cell
                    if FLAGS.train_refit_here:
                        runner.train_here.add(cell)
        common.resolve_refits(runner, refits.values(), records, publish, FLAGS.report_only)
    print(f"wrote {results.json_path} and {results.md_path}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
