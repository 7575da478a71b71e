"""Made-up click logs for the tests of `--format=clicks`: random sessions, written as CSV,
TSV or Parquet with text ids and times in each accepted form."""

import datetime
import random

import pyarrow as pa
import pyarrow.parquet as pq

START_MS = 1396310400000  # 2014-04-01T00:00:00Z
HEADER = ("session_id", "timestamp", "item_id")


def random_clicks(seed, in_order):
    """[(session id, time in ms, item id)] over four days, item popularity skewed so the
    item filter bites. in_order: each session's rows together and in time order (equal
    times included); else some rows are swapped across the file."""
    rng = random.Random(seed)
    rows = []
    for session in range(300):
        moment = START_MS + 1000 * rng.randrange(4 * 86400)
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 6])):
            moment += rng.choice([0, 1000, 60_000, 300_000])
            rows.append((str(session), moment, str(1000 + min(int(rng.paretovariate(0.8)), 40))))
    if not in_order:
        for _ in range(60):
            i, j = rng.randrange(len(rows)), rng.randrange(len(rows))
            rows[i], rows[j] = rows[j], rows[i]
    return rows


def iso(milliseconds):
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


_TIME_TEXT = {"iso": iso, "s": lambda ms: f"{ms / 1000:.3f}", "ms": str}


def write_clicks(path, rows, time_format="iso", parquet_time=None):
    """Writes rows as the file type `path`'s extension names, with text ids "s<session>" and
    "sku-<item>", and a fourth column the reader must ignore. Parquet times are text, or
    with parquet_time "timestamp" a UTC timestamp column, "int" an int64 column."""
    sessions = [f"s{session}" for session, _, _ in rows]
    items = [f"sku-{item}" for _, _, item in rows]
    if str(path).endswith(".parquet"):
        times = [moment for _, moment, _ in rows]
        if parquet_time == "timestamp":
            time_column = pa.array(times, pa.timestamp("ms", tz="UTC"))
        elif parquet_time == "int":
            time_column = pa.array(times, pa.int64())
        else:
            time_column = pa.array([_TIME_TEXT[time_format](moment) for moment in times])
        pq.write_table(pa.table({"category": ["0"] * len(rows), "session_id": sessions,
                                 "timestamp": time_column, "item_id": items}), path)
        return str(path)
    separator = "\t" if str(path).endswith(".tsv") else ","
    lines = [separator.join(("category",) + HEADER)] + [
        separator.join(("0", session, _TIME_TEXT[time_format](moment), item))
        for session, (_, moment, _), item in zip(sessions, rows, items)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)
