"""Figure 3 of the paper (ablation): variants va, at, lo, ga and mtd on the three datasets.

    python experiments/figure3.py --data_dir=../shared/data

`va`: attention over plain item embeddings; `at`: va + positional decay; `lo`: no graph
module; `ga`: graph attention instead of the GCN; `mtd`: the full model (DESIGN.md section 4).
Improvements beyond the paper are measured the same way, as extra bars (--option).
Writes `figure3.json` ({dataset: {variant: test metrics}}, plus "runs" and "stamp"),
`figure3.md` and `figure3.png` (P@20 and MRR@20 bars) under --results_dir. The runs are the
shared `main` cells, so variants already trained for Table 2 are not trained again.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402

from experiments import common  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402

common.define_flags()
flags.DEFINE_list("variants", ["va", "at", "lo", "ga", "mtd"], "Variants, in plotting order.")
flags.DEFINE_multi_string(
    "option", [], "An improvement to measure beside the variants, as "
    "variant:key=value[,key=value] (repeatable), e.g. mtd:graph_writeback=rescale; its bar "
    "is labelled by its run name.")
FLAGS = flags.FLAGS
PLOTTED = ("P@20", "MRR@20")


def label(name):
    return reporting.METHOD_LABELS.get(name, name)


def render_markdown(data, variants):
    lines = ["# Figure 3: ablation of MTD's modules (test, %)", ""]
    lines += reporting.stamp_lines(data["stamp"])
    lines += reporting.smoke_warning(reporting.run_records(data))
    datasets = reporting.dataset_keys(data, common.PAPER_DATASETS)
    headers = ["variant"] + [f"{dataset} {key}" for dataset in datasets for key in PLOTTED]
    rows = [[label(variant)] + [
        reporting.fmt(data[dataset].get(variant, {}).get(key))
        for dataset in datasets for key in PLOTTED] for variant in variants]
    lines += ["", reporting.markdown_table(headers, rows), "",
              "![Figure 3](figure3.png)"]
    return "\n".join(lines)


def plot(data, variants, path):
    plt = reporting.pyplot()
    datasets = reporting.dataset_keys(data, common.PAPER_DATASETS)
    height = 3.6 + 0.15 * len(variants)
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(5 * len(PLOTTED), height), squeeze=False)
    width = 0.8 / max(len(variants), 1)
    # One colour per bar: the default cycle has 10, and option bars make more.
    palette = plt.get_cmap("tab20" if len(variants) > 10 else "tab10")
    for axis, key in zip(axes[0], PLOTTED):
        positions = np.arange(len(datasets))
        for index, variant in enumerate(variants):
            values = [data[dataset].get(variant, {}).get(key, np.nan) for dataset in datasets]
            axis.bar(positions + (index - (len(variants) - 1) / 2) * width, values, width,
                     label=label(variant), color=palette(index % palette.N))
        axis.set_xticks(positions, datasets)
        axis.set_ylabel(f"{key} (%)")
        axis.set_title(key)
    # Below the panels: with option bars the legend would cover them.
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize="small",
                  bbox_to_anchor=(0.5, 0.0))
    figure.subplots_adjust(bottom=0.1 + 0.04 * ((len(variants) + 1) // 2))
    figure.suptitle("Figure 3: ablation (test)")
    reporting.save_figure(figure, path)


def main(argv):
    del argv
    stamp = provenance.make_stamp()
    results = reporting.ResultsFile(FLAGS.results_dir, "figure3")
    runner = common.runner_from_flags(stamp, results.name)
    cells = [runner.cell(dataset, variant) for variant in FLAGS.variants
             for dataset in FLAGS.datasets]
    for spec in FLAGS.option:
        variant, _, settings = spec.partition(":")
        cells += [runner.cell(dataset, variant, **common.parse_overrides([settings]))
                  for dataset in FLAGS.datasets]
    # Bars in flag order; an option equal to the defaults is its variant's bar.
    cells = list(dict.fromkeys(cells))
    shown = list(dict.fromkeys(cell.name for cell in cells))

    def publish(records):
        data = results.load()
        data["stamp"] = stamp
        for dataset in FLAGS.datasets:
            dataset_cells = [cell for cell in cells if cell.dataset == dataset]
            data[dataset] = {cell.name: records[cell]["test"] for cell in dataset_cells
                             if records[cell]}
            reporting.update_runs(data, dataset, {cell.name: records[cell]
                                                  for cell in dataset_cells})
        plot(data, shown, results.png_path())
        results.write(data, render_markdown(data, shown))

    common.resolve_cells(runner, cells, publish, FLAGS.report_only)
    print(f"wrote {results.json_path}, {results.md_path} and {results.png_path()}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
