"""The paired gap between MTD and the strongest baseline of a dataset, on the same test pairs.

Two runs tested on the same pairs differ by less noise than their separate standard errors
suggest: pairs both hit or both miss add none. The gap's standard error is that of the
per-pair differences (`serving.evaluation.compare_ranks`), read from the `test_ranks.npy`
each finished cell keeps. Run folders stay on the machine that trained them, so a result
computed once is kept in the results file with when both runs' metrics were written, and is
reused only while both records are still the ones it was computed from.
"""

import os

from mtd_tf import rank_files
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
    keys = {"model": model_record["run_dir"], "baseline": baseline_record["run_dir"],
            "model_metrics_written": model_record.get("metrics_written"),
            "baseline_metrics_written": baseline_record.get("metrics_written")}
    paths = [os.path.join(runs_dir, record["run_dir"], rank_files.TEST_RANKS_FILE)
             for record in (model_record, baseline_record)]
    if not all(os.path.isfile(path) for path in paths):
        fits = isinstance(earlier, dict) and all(earlier.get(k) == v for k, v in keys.items())
        return earlier if fits else None
    ranks, baseline_ranks = (rank_files.read_ranks(path, num_pairs) for path in paths)
    comparison = evaluation.compare_ranks(ranks, baseline_ranks)
    for name in ("test", "baseline_test"):
        record = model_record if name == "test" else baseline_record
        if abs(comparison[name]["P@20"] - record["test"]["P@20"]) > 1e-6:
            raise DataError(paths[name != "test"], f"its ranks give P@20 "
                            f"{comparison[name]['P@20']:.4f}, its record "
                            f"{record['test']['P@20']:.4f}: not the same run")
    return dict(keys, pairs=int(ranks.size), gap=comparison["gap"],
                gap_standard_error=comparison["gap_standard_error"])
