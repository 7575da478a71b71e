"""Seed-to-seed spread: one variant (or comparison model) and settings trained with several
seeds.

    python experiments/seeds.py --data_dir=../shared/data --datasets=yoochoose --seeds=0,1,2 \
        --settings=embedding_dim=150,graph_writeback=rescale,graph_mix=0.2,score_scale=16,lr_decay=0.5
    python experiments/seeds.py --data_dir=../shared/data --datasets=yoochoose \
        --variant=srgnn --settings=batch_size=100,lr_decay=0.1,l2=5e-6 --results_name=seeds_srgnn

A single run's gap to another (Table 2, Figures 3-4) mixes the models' difference with the
luck of initialisation and shuffling; this measures that luck for one configuration.
Each seed is an ordinary cell (the base --seed's is the shared `main` run, not trained
again), chosen on validation and tested once, as in Table 2. Writes `seeds.json`
({dataset: {"cell", "seeds": {seed: {"valid": {...}, "test": {...}}}, "mean", "std"}},
plus "runs" and "stamp"; "std" is the sample standard deviation over seeds) and `seeds.md`
under --results_dir (`<results_name>.json` and `.md`: one file per configuration).
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402

from experiments import common  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from mtd_tf.errors import ConfigError  # noqa: E402

common.define_flags(default_datasets=("yoochoose",))
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to train, comma-separated.")
flags.DEFINE_string("variant", "mtd", "MTD variant (mtd, lo, va, at, ga) or comparison model "
                    f"({', '.join(common.MODELS)}).")
flags.DEFINE_string("results_name", "seeds", "Name of the results files (<name>.json, .md).")
flags.DEFINE_string("settings", "", "The configuration's settings, key=value[,key=value].")
FLAGS = flags.FLAGS
SUMMARISED = ("P@10", "P@20", "MRR@10", "MRR@20")


def seed_view(records_by_seed):
    """{seed: record} of one dataset's finished seeds -> the JSON entry's seeds, mean, std."""
    view = {"seeds": {str(seed): {"valid": {key: record["valid"][key] for key in SUMMARISED},
                                  "test": {key: record["test"][key] for key in SUMMARISED}}
                      for seed, record in sorted(records_by_seed.items())}}
    if len(records_by_seed) > 1:
        for split in ("valid", "test"):
            values = {key: [record[split][key] for record in records_by_seed.values()]
                      for key in SUMMARISED}
            view.setdefault("mean", {})[split] = {
                key: float(np.mean(column)) for key, column in values.items()}
            view.setdefault("std", {})[split] = {
                key: float(np.std(column, ddof=1)) for key, column in values.items()}
    return view


def render_markdown(data):
    lines = ["# Seed-to-seed spread (%)", ""]
    lines += reporting.stamp_lines(data["stamp"])
    lines += reporting.smoke_warning(reporting.run_records(data))
    headers = ["seed"] + [f"{split} {key}" for split in ("valid", "test") for key in SUMMARISED]
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        entry = data[dataset]
        rows = [[seed] + [reporting.fmt(metrics[split][key]) for split in ("valid", "test")
                          for key in SUMMARISED] for seed, metrics in entry["seeds"].items()]
        if "mean" in entry:
            rows.append(["mean ± std"] + [
                f"{entry['mean'][split][key]:.2f} ± {entry['std'][split][key]:.2f}"
                for split in ("valid", "test") for key in SUMMARISED])
        lines += ["", f"## {dataset}: `{entry['cell']}`", "",
                  reporting.markdown_table(headers, rows)]
        if "mean" not in entry:
            lines += ["", "Fewer than two seeds have finished: no spread yet."]
    return "\n".join(lines)


def main(argv):
    del argv
    if not re.fullmatch(r"[A-Za-z0-9_-]+", FLAGS.results_name):
        raise ConfigError(f"--results_name must be letters, digits, _ or -, got "
                          f"{FLAGS.results_name!r}")
    seeds = [int(seed) for seed in FLAGS.seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds repeats a seed: {FLAGS.seeds}")
    settings = common.parse_overrides([FLAGS.settings])
    if "seed" in settings:
        raise ConfigError("give seeds with --seeds, not in --settings")
    stamp = provenance.make_stamp()
    results = reporting.ResultsFile(FLAGS.results_dir, FLAGS.results_name)
    runner = common.runner_from_flags(stamp, results.name)
    cells = {(dataset, seed): runner.cell(dataset, FLAGS.variant, **settings, seed=seed)
             for dataset in FLAGS.datasets for seed in seeds}

    def publish(records):
        data = results.load()
        data["stamp"] = stamp
        for dataset in FLAGS.datasets:
            finished = {seed: records[cells[dataset, seed]] for seed in seeds
                        if records[cells[dataset, seed]]}
            data[dataset] = {"cell": runner.cell(dataset, FLAGS.variant, **settings).name,
                             **seed_view(finished)}
            reporting.update_runs(data, dataset, {cells[dataset, seed].name: record
                                                  for seed, record in finished.items()})
        results.write(data, render_markdown(data))

    common.resolve_cells(runner, list(cells.values()), publish, FLAGS.report_only)
    print(f"wrote {results.json_path} and {results.md_path}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
