"""What sampled softmax costs in accuracy: the same configuration trained with the full
softmax and with `--loss=sampled_softmax` for each K and optimizer, at equal epochs.

    python experiments/sampled_softmax.py --data_dir=../shared/data --datasets=diginetica \
        --epochs=1 --num_negatives=1024,4096 --optimizers=adam,sparse_adam

Sampling is what makes a step's cost independent of the catalogue (`benchmarks/
catalog_scale.py`); this measures its price on a real catalogue. Every run keeps the
paper's protocol otherwise (validation each epoch, full-ranking test), and each sampled run
is compared with the full-softmax run on the same test pairs: the paired gap and its
standard error, from the runs' kept ranks. Writes `sampled_softmax.json` ({dataset:
{"cells": {row: record summary}, "gaps": {row: paired gap}}}, plus "runs" and "stamp") and
`sampled_softmax.md` under --results_dir.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from experiments import common  # noqa: E402
from experiments import per_pair  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from mtd_tf.data import registry  # noqa: E402
from mtd_tf.errors import DatasetMissingError  # noqa: E402

common.define_flags(default_datasets=("diginetica",))
flags.DEFINE_list("num_negatives", ["1024", "4096"], "Values of K to train, comma-separated.")
flags.DEFINE_list("optimizers", ["adam", "sparse_adam"],
                  "Optimizers of the sampled runs (--optimizer; sparse_adam is trained with the "
                  "first K only: it changes how rows are updated, not what K does).")
flags.DEFINE_string("variant", "mtd", "MTD variant or comparison model to train.")
flags.DEFINE_string("settings", "", "Settings every run shares, key=value[,key=value].")
FLAGS = flags.FLAGS
FULL_ROW = "full softmax"
SHOWN = ("P@10", "P@20", "MRR@10", "MRR@20")
# Its own runs folder group: its runs set --epochs, which the main cells' folders do not name.
GROUP = "sampled_softmax"


def sampled_row(num_negatives, optimizer):
    return f"sampled, K = {num_negatives}" + ("" if optimizer == "adam" else f", {optimizer}")


def test_pair_count(dataset):
    """The test split's pair count (to check the kept ranks), None without the data."""
    try:
        loaded = registry.load_dataset(dataset, registry.resolve_data_dir(FLAGS.data_dir))
    except DatasetMissingError:
        return None
    return len(loaded.test_targets)


def render_markdown(data):
    lines = ["# Sampled softmax against the full softmax, equal epochs (test, %)", ""]
    lines += reporting.stamp_lines(data["stamp"])
    lines += reporting.smoke_warning(reporting.run_records(data))
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        entry = data[dataset]
        rows = []
        for row, summary in entry["cells"].items():
            gap = entry["gaps"].get(row)
            rows.append([row, summary["epochs_run"]]
                        + [reporting.fmt(summary["test"][key]) for key in SHOWN]
                        + [reporting.fmt(summary["seconds_per_epoch"], 0)]
                        + ([f"{gap['gap'][key]:+.2f} ± {gap['gap_standard_error'][key]:.2f}"
                            for key in ("P@20", "MRR@20")] if gap else ["", ""]))
        headers = (["loss", "epochs"] + list(SHOWN) + ["s/epoch"]
                   + [f"{key} vs full (± paired s.e.)" for key in ("P@20", "MRR@20")])
        lines += ["", f"## {dataset}", "", reporting.markdown_table(headers, rows)]
    return "\n".join(lines)


def main(argv):
    del argv
    shared = common.parse_overrides([FLAGS.settings])
    stamp = provenance.make_stamp()
    results = reporting.ResultsFile(FLAGS.results_dir, "sampled_softmax")
    runner = common.runner_from_flags(stamp, results.name)
    plan = {dataset: {FULL_ROW: runner.cell(dataset, FLAGS.variant, GROUP, **shared)}
            for dataset in FLAGS.datasets}
    for dataset, rows in plan.items():
        for index, num_negatives in enumerate(FLAGS.num_negatives):
            for optimizer in FLAGS.optimizers:
                if optimizer != "adam" and index:
                    continue
                rows[sampled_row(num_negatives, optimizer)] = runner.cell(
                    dataset, FLAGS.variant, GROUP, **shared, loss="sampled_softmax",
                    num_negatives=int(num_negatives), optimizer=optimizer)
    pair_counts = {dataset: test_pair_count(dataset) for dataset in plan}

    def publish(records):
        data = results.load()
        data["stamp"] = stamp
        for dataset, rows in plan.items():
            finished = {row: records[cell] for row, cell in rows.items() if records[cell]}
            earlier = data.get(dataset, {}).get("gaps", {})
            gaps = {}
            if FULL_ROW in finished:
                for row, record in finished.items():
                    gap = row != FULL_ROW and per_pair.paired_gap(
                        record, finished[FULL_ROW], FLAGS.runs_dir, pair_counts[dataset],
                        earlier.get(row))
                    if gap:
                        gaps[row] = gap
            data[dataset] = {"cells": {row: {"run": record["run_dir"], "test": record["test"],
                                             "epochs_run": record["epochs_run"],
                                             "seconds_per_epoch": record["seconds_per_epoch"]}
                                       for row, record in finished.items()},
                             "gaps": gaps}
            reporting.update_runs(data, dataset, {rows[row].name: record
                                                  for row, record in finished.items()})
        results.write(data, render_markdown(data))

    cells = [cell for rows in plan.values() for cell in rows.values()]
    common.resolve_cells(runner, cells, publish, FLAGS.report_only)
    print(f"wrote {results.json_path} and {results.md_path}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
