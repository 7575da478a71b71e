"""The published protocol as obviously correct, slow loops: what `mtd_tf.data.prepare` must
write, for the tests of the public logs' presets and of a log with named columns.

`srgnn_split` transliterates SR-GNN's datasets/preprocess.py from its filters on (plus the
documented 1/F rule); the readers before it are SR-GNN's reading loop, the RetailRocket cut
and the `clicks` reading rule (a session's clicks in time order, its date its latest).
"""

import calendar
import collections
import csv
import time

DAY_MS = 86_400_000


def reference_protocol(path, dataset, fraction=1):
    """The three output files' lines for a public log, by SR-GNN's script."""
    if dataset == "retailrocket":
        sess_clicks, sess_date = _retailrocket_sessions(path)
        return srgnn_split(sess_clicks, sess_date, min_length=3, window=7 * DAY_MS,
                           min_prefix=2, fraction=fraction)
    sess_clicks, sess_date = _srgnn_read(path, dataset)
    window = 86400 if dataset == "yoochoose" else 7 * 86400  # seconds, as SR-GNN's dates
    return srgnn_split(sess_clicks, sess_date, min_length=2, window=window, min_prefix=1,
                       fraction=fraction)


def reference_clicks(rows, min_length=2, window=7 * DAY_MS, min_prefix=1, fraction=1,
                     min_count=5):
    """The output files' lines for (session id, time in ms, item id) rows in file order,
    read as a `clicks` log: sessions by first row, clicks by time (ties: file order), a
    session's date its latest click."""
    sess_clicks, sess_date = {}, {}
    for session, moment, item in sorted(rows, key=lambda row: row[1]):  # stable
        sess_clicks.setdefault(session, []).append(item)
        sess_date[session] = moment
    first_rows = list(dict.fromkeys(session for session, _, _ in rows))
    sess_clicks = {session: sess_clicks[session] for session in first_rows}
    sess_date = {session: sess_date[session] for session in first_rows}
    return srgnn_split(sess_clicks, sess_date, min_length, window, min_prefix, fraction,
                       min_count)


def srgnn_split(sess_clicks, sess_date, min_length, window, min_prefix, fraction=1,
                min_count=5):
    """SR-GNN's filters, split, 1/F and numbering on {session: items}, {session: date}
    (both in the sessions' first-row order); returns (train, test, items.tsv) lines."""
    for s in list(sess_clicks):
        if len(sess_clicks[s]) < min_length:
            del sess_clicks[s]
            del sess_date[s]
    counts = collections.Counter(i for seq in sess_clicks.values() for i in seq)
    for s in list(sess_clicks):
        kept = [i for i in sess_clicks[s] if counts[i] >= min_count]
        if len(kept) < min_length:
            del sess_clicks[s]
            del sess_date[s]
        else:
            sess_clicks[s] = kept
    dates = list(sess_date.items())
    maxdate = max(date for _, date in dates)
    splitdate = maxdate - window
    tra_sess = sorted([x for x in dates if x[1] < splitdate], key=lambda x: x[1])
    tes_sess = sorted([x for x in dates if x[1] > splitdate], key=lambda x: x[1])
    tra_seqs = [sess_clicks[s] for s, _ in tra_sess]
    if fraction > 1:
        samples = []  # (session index, prefix length), SR-GNN's order: longest prefix first
        for index, seq in enumerate(tra_seqs):
            for i in range(1, len(seq) - min_prefix + 1):
                samples.append((index, len(seq) - i))
        kept_samples = samples[-(len(samples) // fraction):]
        first = kept_samples[0][0]
        longest = max(length for index, length in kept_samples if index == first)
        tra_seqs = [tra_seqs[first][:longest + 1]] + tra_seqs[first + 1:]
    item_dict = {}
    train_lines = []
    for seq in tra_seqs:
        for i in seq:
            if i not in item_dict:
                item_dict[i] = len(item_dict) + 1
        train_lines.append(" ".join(str(item_dict[i]) for i in seq))
    test_lines = []
    for s, _ in tes_sess:
        seq = [item_dict[i] for i in sess_clicks[s] if i in item_dict]
        if len(seq) < min_prefix + 1:
            continue
        for i in range(1, len(seq) - min_prefix + 1):
            test_lines.append(" ".join(map(str, seq[:-i])) + "\t" + str(seq[-i]))
    item_lines = ["item_id\traw_item_id"] + [f"{v}\t{k}" for k, v in item_dict.items()]
    return train_lines, test_lines, item_lines


def _srgnn_read(path, dataset):
    """SR-GNN's reading loop: the date is that of the session's row read last."""
    def to_date(text):  # time.mktime in SR-GNN; UTC here (no daylight saving)
        if dataset == "yoochoose":
            return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))

    with open(path, newline="") as handle:
        if dataset == "yoochoose":
            reader = csv.DictReader(handle, fieldnames=["session_id", "timestamp", "item_id", "x"])
        else:
            reader = csv.DictReader(handle, delimiter=";")
        sess_clicks, sess_date = {}, {}
        curid, curdate = -1, None
        for data in reader:
            sessid = data["session_id"]
            if curdate and curid != sessid:
                sess_date[curid] = to_date(curdate)
            curid = sessid
            if dataset == "yoochoose":
                item, curdate = data["item_id"], data["timestamp"]
            else:
                item, curdate = (data["item_id"], int(data["timeframe"])), data["eventdate"]
            sess_clicks.setdefault(sessid, []).append(item)
        sess_date[curid] = to_date(curdate)
    if dataset == "diginetica":
        for s in sess_clicks:
            sess_clicks[s] = [i for i, _ in sorted(sess_clicks[s], key=lambda c: c[1])]
    return sess_clicks, sess_date


def _retailrocket_sessions(path):
    with open(path, newline="") as handle:
        views = [(int(row["timestamp"]), int(row["visitorid"]), row["itemid"])
                 for row in csv.DictReader(handle) if row["event"] == "view"]
    views.sort(key=lambda view: (view[1], view[0]))  # stable: ties keep file order
    sess_clicks, sess_date = {}, {}
    previous = None
    for timestamp, visitor, item in views:
        if previous is None or visitor != previous[1] or timestamp - previous[0] > 30 * 60 * 1000:
            session = len(sess_clicks)
            sess_clicks[session] = []
        sess_clicks[session].append(item)
        sess_date[session] = timestamp
        previous = (timestamp, visitor)
    return sess_clicks, sess_date
