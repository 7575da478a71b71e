"""Table 2's figures read from the runs' per-pair test ranks: the paired gap between MTD and
the strongest baseline, and each run's metrics on repeat and on new targets apart.

Two runs tested on the same pairs differ by less noise than their separate standard errors
suggest: pairs both hit or both miss add none. The gap's standard error is that of the
per-pair differences (`serving.evaluation.compare_ranks`), read from the `test_ranks.npy`
each finished cell keeps. Run folders stay on the machine that trained them, so a figure
computed once is kept in the results file with when the runs' metrics were written, and is
reused only while the records are still the ones it was computed from.
"""

import os

import numpy as np

from mtd_tf import rank_files
from mtd_tf import repeats
from mtd_tf.data import registry
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import DataError
from mtd_tf.serving import evaluation

# MTD's final row first: the refit (every training session) where it exists.
MODEL_ROWS = ("mtd_refit", "mtd")


def strongest(view, methods, metric="P@20"):
    """The method among `methods` with the highest test `metric` in `view`, else None.

    Picked on the test split because it only names the competitor: the strongest one shown
    is the hardest comparison for MTD, and nothing is trained or chosen from it.
    """
    shown = [method for method in methods if method in view]
    return max(shown, key=lambda method: view[method][metric], default=None)


def paired_gap(model_record, baseline_record, runs_dir, num_pairs, earlier=None):
    """The gap (model - baseline) in points per metric, with its paired standard error.

    Args:
      model_record, baseline_record: the two cells' records (`common.CellRunner`).
      runs_dir: root of the run folders, where their `test_ranks.npy` may be.
      num_pairs: the test split's pair count (the ranks files must hold as many).
      earlier: the result this returned before (from the results file), reused when both
        records are unchanged and a ranks file is missing here.

    Returns:
      {"model", "baseline" (run folders), "model_metrics_written", "baseline_metrics_written",
       "pairs", "gap", "gap_standard_error"}, or None when a ranks file is missing and no
      earlier result fits.
    """
    keys = _pair_keys(model_record, baseline_record)
    ranks = _ranks(runs_dir, num_pairs, model_record, baseline_record)
    if ranks is None:
        return earlier if _same(earlier, keys) else None
    comparison = evaluation.compare_ranks(*ranks)
    return dict(keys, pairs=int(ranks[0].size), gap=comparison["gap"],
                gap_standard_error=comparison["gap_standard_error"])


def target_split(record, runs_dir, repeat, earlier=None):
    """`repeats.split_report` of one run, from its ranks and the split's repeat flags.

    Args:
      record: the cell's record.
      runs_dir: root of the run folders.
      repeat: bool [num_pairs], `repeats.repeat_targets` of the test split; None when the
        data is not here.
      earlier: the result this returned before, reused while the record is unchanged.

    Returns:
      the split report with "run" and "metrics_written" added, or None.
    """
    keys = {"run": record["run_dir"], "metrics_written": record.get("metrics_written")}
    ranks = None if repeat is None else _ranks(runs_dir, len(repeat), record)
    if ranks is None:
        return earlier if _same(earlier, keys) else None
    return dict(keys, **repeats.split_report(ranks[0], repeat))


def _pair_keys(model_record, baseline_record):
    """What a kept gap was computed from: the two runs and when their metrics were written."""
    return {"model": model_record["run_dir"], "baseline": baseline_record["run_dir"],
            "model_metrics_written": model_record.get("metrics_written"),
            "baseline_metrics_written": baseline_record.get("metrics_written")}


def _same(earlier, keys):
    return isinstance(earlier, dict) and all(earlier.get(key) == value
                                             for key, value in keys.items())


def _ranks(runs_dir, num_pairs, *records):
    """Each record's kept ranks, checked against its test metrics; None if one is missing."""
    paths = [os.path.join(runs_dir, record["run_dir"], rank_files.TEST_RANKS_FILE)
             for record in records]
    if not all(os.path.isfile(path) for path in paths):
        return None
    ranks = [rank_files.read_ranks(path, num_pairs) for path in paths]
    for path, record, kept in zip(paths, records, ranks):
        recomputed = 100.0 * float(np.mean(kept <= 20)) if kept.size else 0.0
        if abs(recomputed - record["test"]["P@20"]) > 1e-6:
            raise DataError(path, f"its ranks give P@20 {recomputed:.4f}, its record "
                            f"{record['test']['P@20']:.4f}: not the same run")
    return ranks


def paired_gap_by_target(model_record, baseline_record, runs_dir, repeat, earlier=None):
    """`paired_gap` on all the test pairs, on the repeat targets and on the new targets,
    from one read of the two ranks files.

    Args:
      model_record, baseline_record, runs_dir, earlier: as for `paired_gap`.
      repeat: bool [num_pairs], `repeats.repeat_targets` of the test split; None when the
        data is not here.

    Returns:
      the keys of `paired_gap` with "all", "repeat" and "new" ({"pairs", "gap",
      "gap_standard_error"}) in place of its figures, or None as `paired_gap`.
    """
    keys = _pair_keys(model_record, baseline_record)
    ranks = None if repeat is None else _ranks(runs_dir, len(repeat), model_record,
                                               baseline_record)
    if ranks is None:
        return earlier if _same(earlier, keys) else None
    parts = {}
    for part, members in (("all", np.ones_like(repeat)), ("repeat", repeat), ("new", ~repeat)):
        comparison = evaluation.compare_ranks(ranks[0][members], ranks[1][members])
        parts[part] = {"pairs": int(members.sum()), "gap": comparison["gap"],
                       "gap_standard_error": comparison["gap_standard_error"]}
    return dict(keys, **parts)


def test_repeat_flags(data_dir, datasets):
    """{dataset: bool [test pairs], whether each target is in its own prefix} for the
    datasets whose files are present.

    Read from the data, not the runs, because a run's record does not keep it; a report
    without the data keeps the counts and splits an earlier invocation stored.
    """
    flags_by_dataset = {}
    for dataset in datasets:
        try:
            loaded = registry.load_dataset(dataset, data_dir)
        except DatasetMissingError:
            continue
        flags_by_dataset[dataset] = repeats.repeat_targets(loaded.test_prefixes,
                                                           loaded.test_targets)
    return flags_by_dataset
