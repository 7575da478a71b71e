"""Figure 4 of the paper (sensitivity): embedding size d, training frequency f, GCN depth.

    python experiments/figure4.py --data_dir=../shared/data                 # yoochoose
    python experiments/figure4.py --data_dir=../shared/data --datasets=yoochoose,diginetica

One sweep per setting, the others at their defaults (d = 100, f = the dataset's default,
1 GCN layer). As in the paper, each point is plotted as a degradation ratio against the
best point of its sweep: ratio = metric / best metric of that sweep (1 = the best).
Writes `figure4.json` ({dataset: {setting: {value: {"P@20", "MRR@20", "ratio_P@20",
"ratio_MRR@20", "valid_P@20", "valid_MRR@20"}}}}, plus "runs" and "stamp"), `figure4.md`
and `figure4.png` under --results_dir. The default point of each sweep is the shared `mtd`
run of Table 2.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from experiments import common  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402

common.define_flags(default_datasets=("yoochoose",))
flags.DEFINE_list("dims", ["25", "50", "100", "150", "200"], "Embedding sizes d.")
flags.DEFINE_list("frequencies", [str(f) for f in range(1, 9)], "Training frequencies f.")
flags.DEFINE_list("gcn_depths", ["1", "2", "3", "4"], "GCN layers.")
FLAGS = flags.FLAGS
PLOTTED = ("P@20", "MRR@20")
SETTING_LABELS = {"embedding_dim": "embedding size d", "frequency": "training frequency f",
                  "gcn_layers": "GCN depth"}


def sweeps():
    """{TrainConfig field: [values]} from the flags."""
    return {"embedding_dim": [int(value) for value in FLAGS.dims],
            "frequency": [int(value) for value in FLAGS.frequencies],
            "gcn_layers": [int(value) for value in FLAGS.gcn_depths]}


def sweep_view(points):
    """{value: record} of one sweep -> {str(value): metrics with ratios to the best point}."""
    best = {key: max((record["test"][key] for record in points.values()), default=None)
            for key in PLOTTED}
    view = {}
    for value, record in sorted(points.items()):
        entry = {}
        for key in PLOTTED:
            entry[key] = record["test"][key]
            entry[f"ratio_{key}"] = record["test"][key] / best[key] if best[key] else None
            entry[f"valid_{key}"] = record["valid"][key]
        view[str(value)] = entry
    return view


def render_markdown(data):
    lines = ["# Figure 4: sensitivity to d, f and GCN depth (test, %; ratio to the sweep's "
             "best)", ""]
    lines += reporting.stamp_lines(data["stamp"])
    lines += reporting.smoke_warning(reporting.run_records(data))
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        lines += ["", f"## {dataset}"]
        for setting, label in SETTING_LABELS.items():
            points = data[dataset].get(setting, {})
            rows = [[value] + [reporting.fmt(entry[key]) for key in PLOTTED]
                    + [reporting.fmt(entry[f"ratio_{key}"], 3) for key in PLOTTED]
                    for value, entry in sorted(points.items(), key=lambda item: int(item[0]))]
            headers = [label] + list(PLOTTED) + [f"ratio {key}" for key in PLOTTED]
            lines += ["", reporting.markdown_table(headers, rows)]
    lines += ["", "![Figure 4](figure4.png)"]
    return "\n".join(lines)


def plot(data, path):
    plt = reporting.pyplot()
    datasets = reporting.dataset_keys(data, common.PAPER_DATASETS)
    figure, axes = plt.subplots(len(PLOTTED), len(SETTING_LABELS),
                                figsize=(4.2 * len(SETTING_LABELS), 3.2 * len(PLOTTED)),
                                squeeze=False)
    for row, key in enumerate(PLOTTED):
        for column, (setting, label) in enumerate(SETTING_LABELS.items()):
            axis = axes[row][column]
            for dataset in datasets:
                points = sorted(data[dataset].get(setting, {}).items(),
                                key=lambda item: int(item[0]))
                points = [(int(value), entry[f"ratio_{key}"]) for value, entry in points
                          if entry[f"ratio_{key}"] is not None]
                if points:
                    axis.plot(*zip(*points), marker="o", label=dataset)
            axis.set_xlabel(label)
            axis.xaxis.get_major_locator().set_params(integer=True)  # settings are integers
            axis.set_ylabel(f"{key} / best")
            axis.grid(alpha=0.3)
    # On the first panel with a curve: a run of one sweep leaves the others empty.
    drawn = [axis for axis in axes.flat if axis.get_lines()]
    if drawn:
        drawn[0].legend(fontsize="small")
    figure.suptitle("Figure 4: degradation ratio against the best point of each sweep (test)")
    figure.tight_layout()
    reporting.save_figure(figure, path)


def main(argv):
    del argv
    stamp = provenance.make_stamp()
    results = reporting.ResultsFile(FLAGS.results_dir, "figure4")
    runner = common.runner_from_flags(stamp, results.name)
    # (dataset, setting, value) -> cell; the default point is the same cell in every sweep.
    points = {(dataset, setting, value): runner.cell(dataset, "mtd", **{setting: value})
              for dataset in FLAGS.datasets for setting, values in sweeps().items()
              for value in values}
    cells = list(dict.fromkeys(points.values()))

    def publish(records):
        data = results.load()
        data["stamp"] = stamp
        for dataset in FLAGS.datasets:
            data[dataset] = {}
            for setting in SETTING_LABELS:
                finished = {value: records[cell]
                            for (name, swept, value), cell in points.items()
                            if name == dataset and swept == setting and records[cell]}
                data[dataset][setting] = sweep_view(finished)
            reporting.update_runs(data, dataset, {cell.name: records[cell] for cell in cells
                                                  if cell.dataset == dataset})
        plot(data, results.png_path())
        results.write(data, render_markdown(data))

    common.resolve_cells(runner, cells, publish, FLAGS.report_only)
    print(f"wrote {results.json_path}, {results.md_path} and {results.png_path()}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
