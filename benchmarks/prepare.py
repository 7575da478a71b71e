"""How fast and how lean is `mtd_tf.data.prepare` on a log the size of the real Yoochoose?

Generates (once; reused while its parameters match) a synthetic `yoochoose-clicks.dat`:
33,003,944 rows like the real file (no header; session_id,timestamp,item_id,category),
about 9.2 million sessions (the real 9,249,729) whose ids rise with time over
2014-04-01..2014-09-30; lengths: 13% single clicks (about 86% of the real sessions survive
SR-GNN's filters), else 1 + Geometric(0.38), plus a 2% Pareto tail, capped at 200 (mean
about 3.6); 52,739 items with Zipf-like popularity (10% consecutive repeats); times in
milliseconds with a "Z"; categories "0", "S" or 1..12. Then runs, in a child process,

    python -m mtd_tf.data.prepare --format=yoochoose --raw=FILE --out=DIR --fraction=64

and reports its wall time and peak resident memory (getrusage of the child).
Target: <= 60 s and <= 6 GiB on 2 cores.

With --log_format=clicks the same clicks are written as a shop's own log would be: a
header line and text ids (`visit-<n>`, `sku-<n>`), in `shop-clicks.csv`, and read with
`--format=clicks` and Yoochoose's options (`--test_days=1 --fraction=64`): the path that
encodes text ids and sorts each session's clicks by time.

    python benchmarks/prepare.py [--rows=33003944] [--workdir=/tmp/mtd_prepare_bench]
        [--log_format=yoochoose|clicks]

Prints one JSON line with the figures, the command and the date.
"""

import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

flags.DEFINE_integer("rows", 33_003_944, "Rows of the synthetic log (the real file's count).")
flags.DEFINE_string("workdir", "/tmp/mtd_prepare_bench", "Where the log and the output go.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic log.")
flags.DEFINE_integer("fraction", 64, "--fraction passed to prepare.")
flags.DEFINE_enum("log_format", "yoochoose", ["yoochoose", "clicks"],
                  "Write the log as yoochoose-clicks.dat, or as a clicks log with text ids.")
FLAGS = flags.FLAGS

NUM_ITEMS = 52_739
ZIPF_EXPONENT = 1.0
SINGLE_CLICK_SHARE = 0.13
GEOMETRIC_P = 0.38
TAIL_SHARE = 0.02
MAX_LENGTH = 200
REPEAT_SHARE = 0.1
MEAN_GAP_SECONDS = 150.0
START = np.datetime64("2014-04-01T00:00:00.000")
DAYS = 183
SESSIONS_PER_CHUNK = 1_000_000
TARGET_SECONDS = 60.0
TARGET_RSS_GIB = 6.0


def session_lengths(rng, num_rows):
    """int64 lengths summing to exactly num_rows."""
    lengths = []
    total = 0
    while total < num_rows:
        size = max(1000, int((num_rows - total) / 3.0))
        chunk = 1 + rng.geometric(GEOMETRIC_P, size=size)
        chunk[rng.random(size) < SINGLE_CLICK_SHARE] = 1
        tail = rng.random(size) < TAIL_SHARE
        chunk[tail] += (rng.pareto(1.5, size=int(tail.sum())) * 8).astype(np.int64)
        chunk = np.minimum(chunk, MAX_LENGTH)
        lengths.append(chunk)
        total += int(chunk.sum())
    lengths = np.concatenate(lengths)
    cut = int(np.searchsorted(np.cumsum(lengths), num_rows))
    lengths = lengths[:cut + 1]
    lengths[-1] -= int(lengths.sum()) - num_rows
    return lengths[lengths > 0]


def write_log(path, num_rows, seed, text_ids=False):
    """Writes the synthetic log (see the module docstring) in chunks of sessions; with
    text_ids, a header line and ids `visit-<n>` and `sku-<n>`."""
    rng = np.random.default_rng(seed)
    lengths = session_lengths(rng, num_rows)
    num_sessions = len(lengths)
    raw_item_ids = rng.choice(np.arange(214_000_000, 215_000_000), NUM_ITEMS, replace=False)
    popularity = (np.arange(1, NUM_ITEMS + 1) + 5.0) ** -ZIPF_EXPONENT
    popularity_cdf = np.cumsum(popularity) / popularity.sum()
    # Session ids rise with time, as in the real file.
    starts_ms = np.sort(rng.integers(0, DAYS * 86_400_000, size=num_sessions))
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    id_type = pa.string() if text_ids else pa.int64()
    schema = pa.schema([("session_id", id_type), ("timestamp", pa.string()),
                        ("item_id", id_type), ("category", pa.string())])
    categories = np.array(["0", "S"] + [str(c) for c in range(1, 13)])
    category_p = np.array([0.7, 0.15] + [0.15 / 12] * 12)
    with open(path, "wb") as sink, pa_csv.CSVWriter(sink, schema,
                                                    write_options=options) as writer:
        if text_ids:  # pyarrow would quote the names
            sink.write(",".join(schema.names).encode() + b"\n")
        for first in range(0, num_sessions, SESSIONS_PER_CHUNK):
            chunk_lengths = lengths[first:first + SESSIONS_PER_CHUNK]
            rows = int(chunk_lengths.sum())
            session_of_row = np.repeat(np.arange(len(chunk_lengths)), chunk_lengths)
            first_of_session = np.zeros(rows, dtype=bool)
            first_of_session[np.cumsum(chunk_lengths) - chunk_lengths] = True
            gaps = rng.exponential(MEAN_GAP_SECONDS * 1000, size=rows).astype(np.int64)
            gaps[first_of_session] = 0
            offsets = np.cumsum(gaps)
            offsets -= np.repeat(offsets[first_of_session], chunk_lengths)
            times_ms = starts_ms[first + session_of_row] + offsets
            items = raw_item_ids[np.searchsorted(popularity_cdf, rng.random(rows))]
            repeat = (rng.random(rows) < REPEAT_SHARE) & ~first_of_session
            repeat_positions = np.flatnonzero(repeat)
            items[repeat_positions] = items[repeat_positions - 1]
            timestamps = pc.strftime(pa.array(START + times_ms.astype("timedelta64[ms]")),
                                     format="%Y-%m-%dT%H:%M:%SZ")
            sessions, items = pa.array(first + 1 + session_of_row), pa.array(items)
            if text_ids:
                sessions = pc.binary_join_element_wise("visit-", sessions.cast(pa.string()), "")
                items = pc.binary_join_element_wise("sku-", items.cast(pa.string()), "")
            table = pa.table([sessions, timestamps, items,
                              pa.array(rng.choice(categories, size=rows, p=category_p))],
                             schema=schema)
            writer.write_table(table)
            logging.info("generated %d of %d sessions", min(first + SESSIONS_PER_CHUNK,
                                                            num_sessions), num_sessions)
    return num_sessions


def main(argv):
    del argv  # Unused.
    os.makedirs(FLAGS.workdir, exist_ok=True)
    text_ids = FLAGS.log_format == "clicks"
    raw_path = os.path.join(FLAGS.workdir,
                            "shop-clicks.csv" if text_ids else "yoochoose-clicks.dat")
    meta_path = raw_path + ".json"
    meta = {"rows": FLAGS.rows, "seed": FLAGS.seed, "generator": 2}
    if not (os.path.exists(raw_path) and os.path.exists(meta_path)
            and json.load(open(meta_path)) == meta):
        started = time.perf_counter()
        write_log(raw_path, FLAGS.rows, FLAGS.seed, text_ids)
        with open(meta_path, "w") as handle:
            json.dump(meta, handle)
        logging.info("wrote %s in %.0f s", raw_path, time.perf_counter() - started)
    out_dir = os.path.join(FLAGS.workdir, "out")
    shutil.rmtree(out_dir, ignore_errors=True)
    command = [sys.executable, "-m", "mtd_tf.data.prepare", f"--format={FLAGS.log_format}",
               f"--raw={raw_path}", f"--out={out_dir}", f"--fraction={FLAGS.fraction}"]
    if text_ids:
        command.append("--test_days=1")  # Yoochoose's; the column names are the defaults
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ, PYTHONPATH=repo_root)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=repo_root, env=environment,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    # Linux reports ru_maxrss in KiB; the only child waited for is the prepare run.
    peak_rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    with open(os.path.join(out_dir, "dataset.json")) as handle:
        stats = json.load(handle)["counts"]
    print(json.dumps({
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(command),
        "rows": FLAGS.rows,
        "file_mib": round(os.path.getsize(raw_path) / 2**20),
        "cpus": os.cpu_count(),
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak_rss_gib, 2),
        "within_target": seconds <= TARGET_SECONDS and peak_rss_gib <= TARGET_RSS_GIB,
        "stats": {key: stats[key] for key in (
            "sessions_read", "full_train_sessions", "full_train_samples", "train_sessions",
            "train_samples", "test_samples", "items")},
    }))


if __name__ == "__main__":
    app.run(main)
