"""How fast and how lean are the baselines of `mtd_tf.baselines` on the real splits?

For each method and dataset, a child process loads the split, fits the method on all
training sessions (its default settings) and ranks every test target; it reports the fit
and scoring times and its peak resident memory (getrusage). With --tune the child is
instead the whole tuned run, `python -m mtd_tf.baselines --method=M --dataset=D --tune`
(every validation setting of the method's grid, the refit and the test), timed from
outside, its peak memory read from os.wait4. Target for a tuned run on diginetica
(43,097 items, 60,858 test pairs): <= 10 minutes and <= 8 GiB on 2 cores.

    python benchmarks/baselines.py [--methods=sknn,vsknn,stan,vstan,sr]
        [--datasets=diginetica] [--data_dir=DIR] [--tune]

Prints one JSON line per method and dataset, with the command, the machine and the date.
"""

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from mtd_tf import baselines  # noqa: E402  pylint: disable=wrong-import-position
from mtd_tf.baselines import methods  # noqa: E402  pylint: disable=wrong-import-position
from mtd_tf.data import registry  # noqa: E402  pylint: disable=wrong-import-position

flags.DEFINE_list("methods", ["sknn", "vsknn", "stan", "vstan", "sr"], "Methods to time.")
flags.DEFINE_list("datasets", ["diginetica"], "Datasets to time them on.")
flags.DEFINE_string("data_dir", None, "Folder of the dataset folders (default: as the CLIs).")
flags.DEFINE_bool("tune", False, "Time the whole tuned CLI run instead of one default fit.")
flags.DEFINE_string("child", None, "Internal: METHOD:DATASET to time in this process.")
FLAGS = flags.FLAGS

TARGET_SECONDS = 600.0
TARGET_RSS_GIB = 8.0


def _gib(kilobytes):
    return kilobytes / 2**20  # ru_maxrss is in KiB on Linux


def time_default_fit(method, dataset_name):
    """{fit_seconds, score_seconds, ...} of one fit at the defaults and one test ranking."""
    dataset = registry.load_dataset(dataset_name, registry.resolve_data_dir(FLAGS.data_dir))
    start = time.perf_counter()
    setting = methods.make_setting(method, {})
    extra = () if setting is None else (setting,)
    baseline = methods.METHODS[method](dataset.train, dataset.num_items, *extra)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = baselines.evaluate(baseline, dataset.test_prefixes, dataset.test_targets)
    score_seconds = time.perf_counter() - start
    pairs = len(dataset.test_targets)
    return {"fit_seconds": round(fit_seconds, 2), "score_seconds": round(score_seconds, 2),
            "test_pairs": pairs, "pairs_per_second": round(pairs / score_seconds),
            "peak_rss_gib": round(_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), 3),
            "P@20": round(result["P@20"], 2), "MRR@20": round(result["MRR@20"], 2)}


def machine():
    """"x86_64, 2 CPUs, <model name>" from /proc/cpuinfo where readable."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return ", ".join(filter(None, (platform.machine(), f"{os.cpu_count()} CPUs", model)))


def run_child(command):
    """(wall seconds, peak RSS GiB, stdout) of a child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with status {process.returncode}")
    return time.perf_counter() - start, _gib(usage.ru_maxrss), stdout


def main(argv):
    del argv
    if FLAGS.child:
        method, dataset = FLAGS.child.split(":")
        print(json.dumps(time_default_fit(method, dataset)))
        return
    data_flags = [f"--data_dir={FLAGS.data_dir}"] if FLAGS.data_dir else []
    for dataset in FLAGS.datasets:
        for method in FLAGS.methods:
            record = {"method": method, "dataset": dataset, "tune": FLAGS.tune}
            if FLAGS.tune:
                command = [sys.executable, "-m", "mtd_tf.baselines", f"--method={method}",
                           f"--dataset={dataset}", "--tune", *data_flags]
                seconds, rss, stdout = run_child(command)
                report = json.loads(stdout)
                record.update({
                    "seconds": round(seconds, 1), "peak_rss_gib": round(rss, 3),
                    "trials": len(report["tuning"]["trials"]), "setting": report["setting"],
                    "P@20": round(report["test"]["P@20"], 2),
                    "MRR@20": round(report["test"]["MRR@20"], 2),
                    "within_target": seconds <= TARGET_SECONDS and rss <= TARGET_RSS_GIB})
            else:
                command = [sys.executable, os.path.relpath(__file__, REPO_ROOT),
                           f"--child={method}:{dataset}", *data_flags]
                _, _, stdout = run_child(command)
                record.update(json.loads(stdout))
            record.update({
                "command": " ".join(command[1:]),
                "machine": machine(),
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")})
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    app.run(main)
