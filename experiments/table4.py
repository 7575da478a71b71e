"""Table 4 of the paper (efficiency): seconds per epoch of MTD, its variants and the
comparison models, measured side by side, with each one's ratio to MTD on the same device
beside the paper's figures.

    python experiments/table4.py --data_dir=../shared/data          # this machine
    (on a machine with a GPU, the same command fills the GPU's column)

An epoch is one graph phase (not for `lo`), f session passes and one validation pass (a
comparison model's: one pass and one validation pass); the
figures are the run's training wall time and CPU time divided by its epochs (metrics.json's
`seconds_per_epoch` and `cpu_seconds_per_epoch`), shown with its `steal_fraction`. They are
taken from the finished shared `main` run of the cell (Table 2, Figure 3) when that run was
finished on this very machine; otherwise a short timing run of --timing_epochs epochs is
trained under `<runs_dir>/table4/<device>/`. With --timing_batches=K a timing run's
session passes stop after K batches and each epoch is extrapolated to whole passes: the
missing batches at the run's steady per-batch rate (metrics.json's
`seconds_per_train_batch`) are added to the measured epoch, whose graph phase and
validation ran whole. That makes the large datasets timeable within an hour on a CPU.
Writes `table4.json` ({dataset: {variant: {device: {"seconds_per_epoch", ...}}}}, plus
"devices", "runs" and "stamp") and `table4.md`; other devices' columns are kept.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from experiments import common  # noqa: E402
from experiments import paper  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from experiments import timing  # noqa: E402
from mtd_tf.errors import ConfigError  # noqa: E402

common.define_flags()
flags.DEFINE_list("variants", ["mtd", "lo", "va", "at", "ga"] + list(common.MODELS),
                  "MTD variants and comparison models to time.")
flags.DEFINE_integer("timing_epochs", 2, "Epochs of a timing run.", lower_bound=1)
flags.DEFINE_integer("timing_batches", 0,
                     "Session-step batches per pass of a timing run (0: whole passes); "
                     "capped passes are extrapolated to whole ones.", lower_bound=0)
flags.DEFINE_bool("use_main_runs", True,
                  "Use finished main runs made on this machine instead of timing runs.")
FLAGS = flags.FLAGS


def plan(runner, device, machine):
    """({(dataset, variant): main record or timing Cell}): main runs where usable."""
    planned = {}
    for dataset in FLAGS.datasets:
        for variant in FLAGS.variants:
            record = None
            if FLAGS.use_main_runs:
                try:
                    record = runner.finished_record(runner.cell(dataset, variant))
                except ConfigError:  # a main run with other settings: not this timing
                    record = None
            if record is not None and record["stamp"]["machine"] == machine:
                planned[dataset, variant] = record
            else:
                capped = ({"max_train_batches": FLAGS.timing_batches}
                          if FLAGS.timing_batches else {})
                planned[dataset, variant] = runner.cell(
                    dataset, variant, group=f"table4/{provenance.device_slug(device)}",
                    epochs=FLAGS.timing_epochs, **capped)
    return planned


def entry(record, source):
    seconds, batches_timed = timing.whole_pass_epoch(record)
    return {"seconds_per_epoch": seconds,
            "measured_seconds_per_epoch": record["seconds_per_epoch"],
            "batches_timed_per_pass": batches_timed,
            # the CPU time of a capped epoch says nothing about a whole one
            "cpu_seconds_per_epoch": (None if batches_timed
                                      else record.get("cpu_seconds_per_epoch")),
            "steal_fraction": record.get("steal_fraction"),
            "frequency": record["config"]["frequency"], "epochs_timed": record["epochs_run"],
            "max_train_batches": record["config"]["max_train_batches"], "source": source,
            "run_dir": record["run_dir"]}


def render_markdown(data):
    lines = ["# Table 4: seconds per epoch (graph phase + f session passes + validation)", ""]
    lines += reporting.stamp_lines(data["stamp"], reporting.FROM_RUN_METRICS + (
        " Where a cell says so, it is extrapolated from there to whole passes."))
    all_records = [record for by_dataset in data.get("runs", {}).values()
                   for runs in by_dataset.values() for record in runs.values()]
    lines += reporting.smoke_warning(
        [record for record in all_records if timing.whole_pass_epoch(record)[1] is None])
    devices = sorted(data.get("devices", {}))
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        commands = sorted({runs[dataset][variant]["stamp"]["command"]
                           for runs in data.get("runs", {}).values() if dataset in runs
                           for variant in runs[dataset]})
        rows = []
        reference = paper.TABLE4.get(dataset, {})
        for variant, label in list(reporting.METHOD_LABELS.items()) + [("tisa", "TiSASRec")]:
            timings = data[dataset].get(variant, {})
            if not timings and variant not in reference:
                continue
            frequency = next(iter(timings.values()))["frequency"] if timings else ""
            rows.append([label, frequency]
                        + [_cell(timings.get(device)) for device in devices]
                        + [_ratio(timings.get(device), data[dataset].get("mtd", {}).get(device))
                           for device in devices]
                        + [reporting.fmt(reference.get(variant)),
                           _ratio_of(reference.get(variant), reference.get("mtd"))])
        lines += ["", f"## {dataset}", ""]
        if commands:
            lines += [f"Timed by `{command}`." for command in commands] + [""]
        lines += [reporting.markdown_table(
            ["method", "f"] + devices + [f"x MTD ({device})" for device in devices]
            + ["paper s/epoch", "paper x MTD"], rows)]
    lines += ["", "Wall-clock seconds per epoch, averaged over the epochs of the run, then "
              "the process's CPU seconds per epoch (all threads) where recorded; in brackets: "
              "epochs timed, *timing* for a short run made for this table (otherwise the "
              "Table 2 run), and the share of the machine's CPU time stolen by other guests "
              "while it trained, where recorded. Steal stretches wall time, and CPU time "
              "too (thread pools spin while a core is away): compare rows timed under "
              "similar steal. *From K batches*: the run's session passes stopped after K "
              "batches, and its epoch is the measured one plus each pass's missing batches "
              "at the run's steady rate (the batches after each pass's first); its graph "
              "phase and validation ran whole, and its CPU time is not shown. *x MTD*: "
              "seconds per epoch over MTD's on the same device. The paper's figures are "
              "its Table 4 (one GPU). TiSASRec needs click timestamps, which the published "
              "splits do not have: it is not run."]
    lines += reporting.hand_written_notes("table4")
    return "\n".join(lines)


def _ratio(timed, mtd):
    return _ratio_of(timed and timed["seconds_per_epoch"], mtd and mtd["seconds_per_epoch"])


def _ratio_of(seconds, mtd_seconds):
    if not seconds or not mtd_seconds:
        return reporting.MISSING
    return f"{seconds / mtd_seconds:.2f}"


def _cell(timed):
    if not timed:
        return reporting.MISSING
    tag = "" if timed["source"] == "main run" else ", timing"
    cpu, steal = timed.get("cpu_seconds_per_epoch"), timed.get("steal_fraction")
    batches_timed = timed.get("batches_timed_per_pass")
    cpu_text = "" if cpu is None else f" / {cpu:.0f} CPU"
    batches_text = "" if batches_timed is None else f", from {batches_timed} batches"
    steal_text = "" if steal is None else f", {100 * steal:.0f}% stolen"
    return (f"{timed['seconds_per_epoch']:.1f}{cpu_text} ({timed['epochs_timed']}{tag}"
            f"{batches_text}{steal_text})")


def main(argv):
    del argv
    stamp = provenance.make_stamp()
    machine = stamp["machine"]
    device = provenance.device_key(machine)
    results = reporting.ResultsFile(FLAGS.results_dir, "table4")
    runner = common.runner_from_flags(stamp, results.name)
    planned = plan(runner, device, machine)
    cells = [value for value in planned.values() if isinstance(value, common.Cell)]

    def publish(records):
        data = results.load()
        data["stamp"] = stamp
        data.setdefault("devices", {})[device] = machine
        runs = data.setdefault("runs", {}).setdefault(device, {})
        for dataset in FLAGS.datasets:
            view = data.setdefault(dataset, {})
            runs[dataset] = {}
            for variant in FLAGS.variants:
                value = planned[dataset, variant]
                is_cell = isinstance(value, common.Cell)
                record = records[value] if is_cell else value
                view.setdefault(variant, {}).pop(device, None)
                if record is None:
                    continue
                view[variant][device] = entry(record, "timing run" if is_cell else "main run")
                runs[dataset][variant] = reporting.clean_record(record)
        results.write(data, render_markdown(data))

    common.resolve_cells(runner, cells, publish, FLAGS.report_only)
    print(f"wrote {results.json_path} and {results.md_path} (device: {device})")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
