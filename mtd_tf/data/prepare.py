"""Turns a raw click log into a dataset folder, by the published protocol.

    python -m mtd_tf.data.prepare --format=yoochoose|diginetica|retailrocket \\
        --raw=FILE --out=DIR [PROTOCOL OPTIONS] [--frequency=F] [--skip_bad_rows]
    python -m mtd_tf.data.prepare --format=clicks --raw=LOG.csv|.tsv|.parquet --out=DIR \\
        [--session_column=session_id] [--time_column=timestamp] [--item_column=item_id] \\
        [--time_format=iso|s|ms] [--file_type=auto] [PROTOCOL OPTIONS] [--frequency=F]

writes, atomically (a failed run leaves no output folder behind), DIR/ with
  train_sessions.txt, test_pairs.txt  the split in the project's text format (DESIGN.md section 1);
  items.tsv     header `item_id<TAB>raw_item_id`, then one line per internal id 1..M;
  dataset.json  the settings training takes from the folder (the shortest prefix
                min_prefix_len and the training frequency f), the source file and format,
                the protocol's options, the split's figures and the date (`dataset_info`).
DIR must be new or empty. Use it as any dataset folder, whatever its name:
`--dataset=<basename of DIR> --data_dir=<parent of DIR>`.

Formats. The three public logs are presets (`raw_logs` says how each is laid out): each
brings its published protocol options and training frequency f (yoochoose 1, diginetica 4,
retailrocket 6). `clicks` is any log with a session, a time and an item column, as CSV,
TSV or Parquet (`click_log` says how it is read), with SR-GNN's options and f = 1. Every
protocol option is a flag whose default is the format's (each flag's help lists them):
--test_days, --min_session_length, --min_item_count, --min_prefix_len and --fraction;
--frequency sets f.

The protocol is SR-GNN's `datasets/preprocess.py` (CRIPAC-DIG/SR-GNN), which the MTD authors
reused, reproduced with its quirks (`prepare_split` does it on whole arrays):

 1. Clicks are grouped by session id (a session split over separate runs of the file is
    one session). Yoochoose keeps file order inside a session; Diginetica sorts a session's
    clicks stably by `timeframe`; RetailRocket sessions are cut by `raw_logs`.
 2. A session's date is the date written on its *last row in file order* (SR-GNN keeps the
    `curdate` of the row read last), not its latest date: Yoochoose the timestamp truncated
    to the second, Diginetica the `eventdate` day, RetailRocket the last view's timestamp.
 3. Sessions shorter than `min_session_length` are dropped (SR-GNN: length 1; RetailRocket:
    length <= 2). Then items clicked fewer than `min_item_count` (5) times, counted over
    every click left (repeats included, test period included), are removed, and sessions
    shorter than `min_session_length` dropped again.
 4. split date = the latest session date - `test_days`: 1 day (Yoochoose) or 7 days
    (Diginetica, RetailRocket). Training = sessions dated strictly before it, test = strictly after;
    sessions dated exactly on it are in neither (SR-GNN uses `<` and `>`).
 5. Both sets are sorted by date; ties keep the order of the sessions' first rows in the
    file (Python's sort is stable over a dict filled in file order).
 6. 1/F (`fraction`; Yoochoose 1/64 and 1/4; 1 = all): SR-GNN augments the training
    sessions into samples, session by session, longest prefix first ([a,b,c,d] ->
    ([a,b,c],d), ([a,b],c), ([a],b)), and keeps the last int(n / F) of the n samples. Those are whole sessions plus the shortest k prefixes of
    the first one; we keep that session's first k + 1 items, so that prefix augmentation of
    train_sessions.txt gives exactly SR-GNN's `train.txt` samples (SR-GNN's
    `all_train_seq.txt` holds that first session whole; the difference is at most one
    session's tail). F must leave at least one sample (SR-GNN's `[-0:]` would keep all).
 7. Items are numbered 1..M by first appearance over the (kept) training sessions in order.
    For 1/F this numbering and the "known to training" test below use the kept sessions,
    as in the MTD authors' published yoochoose1_64 (items exactly 1..17,376, every test id
    a training id, 55,400 test pairs where SR-GNN's full-training filter gives 55,898);
    SR-GNN numbers over the full training set. Their order of ids is not reproducible (it
    is not first appearance) and does not matter to any model.
 8. Test sessions lose the items unknown to training, then those shorter than
    min_prefix_len + 1 are dropped; each gives (s[:t], s[t]) for t = len - 1 down to
    `min_prefix_len` (1; RetailRocket 2, as in its published split), longest prefix first.

Ids are compared as integers in the public logs (SR-GNN compares strings, so "07" and "7"
would differ; the public logs write no leading zeros) and as text in a `clicks` log.
Dates are read as UTC; see raw_logs.ClickLog. For a `clicks` log, steps 1 and 2 read: a
session's clicks are put in time order, and its date is its latest click (`click_log`).
"""

import dataclasses
import json
import os

from absl import flags
from absl import logging

from mtd_tf import cli
from mtd_tf import io_utils
from mtd_tf import settings
from mtd_tf.data import click_log
from mtd_tf.data import dataset_info
from mtd_tf.data import formats
from mtd_tf.data import item_catalog
from mtd_tf.data import protocol
from mtd_tf.data import raw_logs
from mtd_tf.data import registry
from mtd_tf.errors import ConfigError
from mtd_tf.errors import DatasetMissingError
from mtd_tf.errors import MTDError

CLICKS = "clicks"
PROTOCOL_NAME = "SR-GNN datasets/preprocess.py (CRIPAC-DIG/SR-GNN), see mtd_tf/data/prepare.py"
FORMATS = {
    "yoochoose": "yoochoose-clicks.dat from the RecSys Challenge 2015 data (yoochoose-data.7z)",
    "diginetica": "train-item-views.csv from the CIKM Cup 2016 data (dataset-train-diginetica.zip)",
    "retailrocket": "events.csv from the RetailRocket e-commerce dataset (Kaggle)",
    CLICKS: "a CSV, TSV or Parquet click log with a session, a time and an item column",
}
# Each format's protocol options: the flags' defaults.
PROTOCOL_DEFAULTS = {**protocol.PROTOCOLS, CLICKS: protocol.Protocol()}


def prepare(log_format, raw_path, out_dir, click_format=None, frequency=None,
            skip_bad_rows=False, **options):
    """Reads `raw_path`, applies the protocol and writes the new folder `out_dir` atomically.

    Args:
      log_format: a key of `FORMATS`.
      raw_path: the raw log.
      out_dir: output folder; it must not exist or be empty.
      click_format: `click_log.ClickLogFormat` of a `clicks` log (None: its defaults).
      frequency: the training frequency f recorded for the dataset (None: the format's).
      skip_bad_rows: drop malformed rows (counted in dataset.json) instead of stopping.
      **options: protocol options (`protocol.Protocol` fields) replacing the format's;
        None values are ignored.

    Returns:
      The dict written to dataset.json.
    """
    if log_format not in FORMATS:
        raise MTDError(f"unknown --format {log_format!r}; choose one of {', '.join(FORMATS)}")
    if click_format is not None and log_format != CLICKS:
        raise ConfigError(f"column and time settings apply to --format={CLICKS} only")
    options = protocol_options(log_format, **options)
    # Presets take their published dataset's f; `clicks` names no published dataset: 1.
    frequency = registry.defaults_for(log_format).frequency if frequency is None else frequency
    if settings.positive_int(frequency):
        raise ConfigError(f"--frequency {settings.positive_int(frequency)}, got {frequency!r}")
    _check_new_folder(out_dir)
    if os.path.isdir(raw_path):
        raise MTDError(f"--raw {raw_path} is a folder; --raw takes the file {FORMATS[log_format]}")
    if not os.path.isfile(raw_path):
        raise DatasetMissingError(f"{raw_path}: no such file; --raw takes {FORMATS[log_format]}")

    source = {"file": os.path.abspath(raw_path), "format": log_format}
    if log_format == CLICKS:
        click_format = click_format or click_log.ClickLogFormat()
        clicks = click_log.read_click_log(raw_path, click_format, skip_bad_rows)
        source.update(dataclasses.asdict(click_format),
                      file_type=click_log.file_type_of(raw_path, click_format))
    else:
        clicks = raw_logs.READERS[log_format](raw_path, skip_bad_rows=skip_bad_rows)
    split = protocol.prepare_split(clicks, options)
    defaults = dataset_info.DatasetDefaults(min_prefix_len=options.min_prefix_len,
                                            frequency=frequency)
    with io_utils.atomic_output_dir(out_dir) as folder:
        formats.write_text_split(folder, split.train, split.test_prefixes, split.test_targets)
        item_catalog.write_raw_item_ids(folder, split.raw_item_ids)
        info = dataset_info.write_dataset_info(
            folder, defaults, source, {"name": PROTOCOL_NAME, **dataclasses.asdict(options)},
            split.stats)
    logging.info("%s: %d training sessions (%d samples), %d test pairs, %d items -> %s",
                 raw_path, split.stats["train_sessions"], split.stats["train_samples"],
                 split.stats["test_samples"], split.stats["items"], out_dir)
    return info


def protocol_options(log_format, **options):
    """The `protocol.Protocol` of `log_format` with `options` (None values ignored) in place
    of its defaults; a value out of range is a `ConfigError` naming the option."""
    unknown = sorted(set(options) - {field.name for field in dataclasses.fields(protocol.Protocol)})
    if unknown:
        raise ConfigError(f"unknown protocol option {unknown[0]!r}")
    chosen = dataclasses.replace(PROTOCOL_DEFAULTS[log_format], **{
        name: value for name, value in options.items() if value is not None})
    settings.check_fields(chosen)
    return chosen


def _check_new_folder(out_dir):
    """Refuses an output folder that exists and is not empty (this tool never deletes a
    folder), or whose name training would not find it by."""
    name = os.path.basename(os.path.normpath(out_dir))
    if registry.canonical_name(name) != name:
        raise MTDError(f"--out {out_dir}: --dataset={name} reads the folder "
                       f"{registry.canonical_name(name)}, not this one; choose another name")
    if registry.synthetic_sizes(name) is not None:
        raise MTDError(f"--out {out_dir}: --dataset={name} names a generated synthetic "
                       "dataset; choose another name")
    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise MTDError(f"--out {out_dir} exists and is not a folder")
    if os.listdir(out_dir):
        raise MTDError(f"--out {out_dir} exists and is not empty; choose a new folder (or "
                       "remove this one)")


def _define_flags():
    flags.DEFINE_enum("format", None, list(FORMATS), "Which log --raw is: " + "; ".join(
        f"{name}: {source}" for name, source in FORMATS.items()) + ".")
    flags.DEFINE_alias("dataset", "format")  # the flag's earlier name
    flags.DEFINE_string("raw", None, "The raw log (see --format).")
    flags.DEFINE_string("out", None, "Output folder, new or empty; training finds the dataset "
                        "by its name (--dataset=<its name> --data_dir=<its parent>).")
    settings.define_choice_flags(PROTOCOL_DEFAULTS)
    settings.define_flags(click_log.ClickLogFormat)
    cli.show_in_help(settings.__name__)
    flags.DEFINE_integer("frequency", None, "Training frequency f (session passes per graph "
                         "step) recorded for the dataset. Default: " + ", ".join(
                             f"{name} {registry.defaults_for(name).frequency}"
                             for name in FORMATS) + ".", lower_bound=1)
    flags.DEFINE_bool("skip_bad_rows", False, "Drop malformed rows (counted in dataset.json) "
                      "instead of stopping at the first one.")
    flags.mark_flags_as_required(["format", "raw", "out"])


def main(argv):
    del argv  # Unused.
    values = flags.FLAGS
    click_flags = [field.name for field in settings.flag_fields(click_log.ClickLogFormat)
                   if values[field.name].present]
    click_format = None
    if values.format == CLICKS:
        click_format = click_log.ClickLogFormat(
            **settings.values_from_flags(click_log.ClickLogFormat))
    elif click_flags:
        raise ConfigError(f"--{click_flags[0]} applies to --format={CLICKS} only")
    info = prepare(values.format, values.raw, values.out, click_format, values.frequency,
                   values.skip_bad_rows, **settings.present_values(PROTOCOL_DEFAULTS))
    out_dir = os.path.abspath(values.out)
    print(json.dumps({
        "format": values.format, "out": values.out, "dataset": os.path.basename(out_dir),
        "data_dir": os.path.dirname(out_dir), "min_prefix_len": info["min_prefix_len"],
        "frequency": info["frequency"],
        **{key: info["counts"][key] for key in (
            "train_sessions", "train_samples", "test_samples", "items")}}))


if __name__ == "__main__":
    _define_flags()
    cli.run_app(main)
