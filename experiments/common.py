"""Shared machinery of the paper experiments: flags, cells, run folders and their records.

A *cell* is one training run of `MTDModel` (a variant with some settings) or of a
comparison model (`--model`, with some settings), or one baseline evaluation on one dataset. Its run folder is `<runs_dir>/<group>/<dataset>/<cell name>/`;
the cell name is the method followed by the settings that make the cell differ from the
invocation's base settings (`mtd`, `mtd-embedding_dim=50`, `pop`). Cells of group `main`
are shared by Table 2, Figure 3, Figure 4 and Figure 5: the full model on yoochoose is one
folder, trained once, whichever script asks first.

- A finished cell (`metrics.json` complete) is never retrained: its record is read back.
  So is a cell with no folder here whose record, with the same settings, is published in
  the committed results files (`published.py`): its folder stayed on the machine that
  trained it.
- An unfinished one resumes from the Trainer's checkpoints (same folder, same settings).
- `cell.json` holds the settings a folder was started with; asking the same folder for
  other settings (say another --epochs) is an error, never a silent mix of two runs.
- A cell being trained by another process (its `.lock` is held) is reported pending.
- A baseline with settings (SKNN, V-SKNN, STAN, VSTAN, SR) is tuned on validation first
  (`mtd_tf.baselines.tuning`); its record keeps the chosen setting and every trial.
- Every cell keeps each test pair's rank (`test_ranks.npy`), for paired gaps (`paired.py`).
"""

import contextlib
import dataclasses
import datetime
import hashlib
import json
import math
import os
import sys
import time

from absl import flags
from absl import logging

from experiments import published
from mtd_tf import cli
from mtd_tf import folder_lock
from mtd_tf import settings as settings_lib
from mtd_tf.data import registry
from mtd_tf.errors import ConfigError
from mtd_tf.errors import MTDError
from mtd_tf.errors import RunStopped
from mtd_tf.io_utils import atomic_write_text
from mtd_tf.metrics import REPORTED_METRICS
from mtd_tf.models.mtd_config import MTDConfig
from mtd_tf.models.mtd_config import VARIANTS
from mtd_tf.models.registry import MODEL_CONFIGS
from mtd_tf.training.config import DEFAULTS as CONFIG_DEFAULTS
from mtd_tf.training.config import FIELDS as CONFIG_FIELDS
from mtd_tf.training.config import TRAINER_FIELDS
from mtd_tf.training.config import TrainConfig
from mtd_tf.training.config import changed_settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RUNS_DIR = os.path.join(REPO_ROOT, "experiments", "runs")
DEFAULT_RESULTS_DIR = os.path.join(REPO_ROOT, "experiments", "results")
PAPER_DATASETS = ("yoochoose", "diginetica", "retailrocket")
BASELINES = ("pop", "spop", "itemknn", "sknn", "vsknn", "stan", "vstan", "sr")
# Settings that locate a run rather than define it.
_PATH_FIELDS = ("data_dir", "model_dir")
# Settings a cell sets itself (its dataset, folder and method).
_FIXED_BY_CELL = _PATH_FIELDS + ("dataset", "model", "variant", "session_encoder",
                                  "graph_encoder")
# The comparison models (`mtd_tf.models`), trained as MTD is, by their --model name.
MODELS = tuple(name for name in MODEL_CONFIGS if name != "mtd")
METHODS = tuple(VARIANTS) + MODELS + BASELINES

FLAGS = flags.FLAGS


def define_flags(default_datasets=PAPER_DATASETS):
    """Flags every experiment script shares; training defaults are TrainConfig's."""
    flags.DEFINE_string("data_dir", None,
                        "Folder holding dataset folders. Default: $MTD_DATA_DIR, else data/.")
    flags.DEFINE_list("datasets", list(default_datasets), "Datasets to run, comma-separated.")
    flags.DEFINE_string("runs_dir", DEFAULT_RUNS_DIR,
                        "Run folders (checkpoints, metrics.json); git-ignored.")
    flags.DEFINE_string("results_dir", DEFAULT_RESULTS_DIR,
                        "Where <name>.json, <name>.md and the PNG plots are written.")
    flags.DEFINE_bool("report_only", False,
                      "Train nothing: rebuild the results from the cells already finished.")
    flags.DEFINE_integer("epochs", CONFIG_DEFAULTS["epochs"], "Maximum epochs per run.")
    flags.DEFINE_integer("patience", CONFIG_DEFAULTS["patience"],
                         "Early stopping: epochs without a better validation P@20.")
    flags.DEFINE_integer("max_train_batches", None,
                         "Cap on batches per session pass (smoke runs only).")
    flags.DEFINE_integer("embedding_dim", CONFIG_DEFAULTS["embedding_dim"], "Embedding size d.")
    flags.DEFINE_integer("graph_steps", CONFIG_DEFAULTS["graph_steps"],
                         "Maximum Adam steps of the graph phase per epoch.")
    flags.DEFINE_integer("batch_size", CONFIG_DEFAULTS["batch_size"], "Batch size.")
    flags.DEFINE_integer("seed", CONFIG_DEFAULTS["seed"], "Random seed of every run.")
    flags.DEFINE_multi_string("set", [], "Any other TrainConfig field for every run, as "
                              "key=value (repeatable), e.g. --set=graph_writeback=rescale.")
    cli.show_in_help(__name__)


def base_settings_from_flags():
    """TrainConfig fields shared by every cell of this invocation."""
    settings = dict(epochs=FLAGS.epochs, patience=FLAGS.patience,
                    max_train_batches=FLAGS.max_train_batches,
                    embedding_dim=FLAGS.embedding_dim, graph_steps=FLAGS.graph_steps,
                    batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    settings.update(parse_overrides(FLAGS.set))
    return settings


def parse_overrides(specs):
    """["lr=0.0005", "frequency=none"] -> {"lr": 0.0005, "frequency": None}, typed by field."""
    overrides = {}
    for spec in specs:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, text = item.partition("=")
            if not sep or key not in CONFIG_FIELDS or key in _FIXED_BY_CELL:
                raise ConfigError(f"bad setting {item!r}: expected key=value with key one of "
                                  f"{sorted(set(CONFIG_FIELDS) - set(_FIXED_BY_CELL))}")
            overrides[key] = settings_lib.parse_value(CONFIG_FIELDS[key], text)
    return overrides


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run: `method` is an MTD variant, a comparison model or a baseline; `overrides`
    are sorted pairs."""

    dataset: str
    method: str
    overrides: tuple = ()
    group: str = "main"

    @property
    def name(self):
        return "-".join([self.method] + [f"{key}={value}" for key, value in self.overrides])

    @property
    def is_baseline(self):
        return self.method in BASELINES


def method_defaults(method):
    """Every setting of a run of `method` at its default: the trainer's and MTD's for an MTD
    variant (what records written before the comparison models existed meant), the
    trainer's and the model's own for a comparison model."""
    if method not in MODELS:
        return dict(CONFIG_DEFAULTS)
    model_fields = dataclasses.fields(MODEL_CONFIGS[method])
    return {**{name: field.default for name, field in TRAINER_FIELDS.items()},
            **{field.name: field.default for field in model_fields}, "model": method}


def _config_view(config_dict):
    return {key: value for key, value in config_dict.items() if key not in _PATH_FIELDS}


def _complete(metrics, need_valid):
    blocks = ("test", "valid") if need_valid else ("test",)
    for block in blocks:
        values = metrics.get(block)
        if not isinstance(values, dict):
            return False
        for key in REPORTED_METRICS:
            if not isinstance(values.get(key), (int, float)) or not math.isfinite(values[key]):
                return False
    return True


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


class CellRunner:
    """Turns cells into records: reads finished ones, trains (or resumes) the others.

    Args:
      runs_dir: root of the run folders.
      data_dir: dataset root (already resolved).
      base: TrainConfig fields shared by every cell (`base_settings_from_flags()`).
      stamp: this invocation's `provenance.make_stamp()`, kept in the records of cells it finishes.
      published_records: {run folder relative to runs_dir: record} of cells finished
        elsewhere (`published.load_published_records`); a cell found there with the same
        settings counts as finished. None for scripts that need the folder itself.
    """

    def __init__(self, runs_dir, data_dir, base, stamp, published_records=None):
        self.runs_dir = os.path.abspath(runs_dir)
        self.data_dir = data_dir
        self.base = dict(base)
        self.stamp = stamp
        self.published_records = dict(published_records or {})
        self.failures = {}  # run folder -> error message
        self.pending = []  # run folders locked by another process
        # Cells trained here even where a record of them is published: their folders
        # (export, test ranks) are wanted, not just their metrics.
        self.train_here = set()

    def base_for(self, dataset, method="mtd"):
        """The base settings of `method`'s runs, with the training frequency resolved: MTD's
        per dataset, one pass per epoch for a comparison model. Invocation-wide settings
        that a comparison model does not have (MTD's --set=graph_mix=...) skip it."""
        defaults = method_defaults(method)
        settings = dict(defaults, **{key: value for key, value in self.base.items()
                                     if key in defaults})
        if settings["frequency"] is None:
            settings["frequency"] = MODEL_CONFIGS.get(method, MTDConfig).default_frequency(
                registry.defaults_for(dataset, self.data_dir).frequency)
        return settings

    def cell(self, dataset, method, group="main", **overrides):
        """A `Cell`; overrides equal to the base settings are dropped, so folders are shared."""
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}: expected one of {METHODS}")
        check_dataset(dataset, self.data_dir)
        base = self.base_for(dataset, method)
        for key in overrides:
            if key not in base or key in _FIXED_BY_CELL:
                raise ConfigError(f"{key!r} is not a setting a {method} cell can vary")
        kept = tuple(sorted((key, value) for key, value in overrides.items()
                            if value != base[key]))
        if method in BASELINES:
            kept = ()  # baselines have no settings
        return Cell(dataset, method, kept, group)

    def run_dir(self, cell):
        return os.path.join(self.runs_dir, *cell.group.split("/"), cell.dataset, cell.name)

    def config(self, cell):
        settings = self.base_for(cell.dataset, cell.method)
        settings.update(cell.overrides)
        settings.update(dataset=registry.canonical_name(cell.dataset), data_dir=self.data_dir,
                        model_dir=self.run_dir(cell))
        settings["model" if cell.method in MODELS else "variant"] = cell.method
        return TrainConfig.from_settings(**settings)

    def _check_settings(self, cell, run_dir):
        """Refuses a folder that was started, or finished, with other settings."""
        wanted = _config_view(self.config(cell).to_dict())
        started = _read_json(os.path.join(run_dir, "cell.json"))
        recorded = started.get("config") if isinstance(started, dict) else None
        if recorded is None:
            metrics = _read_json(os.path.join(run_dir, "metrics.json"))
            recorded = _config_view(metrics.get("flags", {})) if isinstance(metrics, dict) else None
        changed = [] if recorded is None else changed_settings(recorded, wanted)
        if changed:
            differences = ", ".join(
                f"{key}: folder {recorded.get(key, CONFIG_DEFAULTS.get(key))!r}, "
                f"asked {wanted[key]!r}" for key in changed)
            raise ConfigError(f"{run_dir} holds a run with other settings ({differences}); "
                              "pass the same flags, another --runs_dir, or delete the folder")

    def finished_record(self, cell):
        """The record of a finished cell, else None; never trains."""
        run_dir = self.run_dir(cell)
        if not cell.is_baseline:
            self._check_settings(cell, run_dir)
        metrics = _read_json(os.path.join(run_dir, "metrics.json"))
        if not isinstance(metrics, dict) or not _complete(metrics, self._validated(cell)):
            # A folder here, finished or not, is this machine's run and outranks a record
            # published from elsewhere: an unfinished one resumes.
            return None if os.path.isdir(run_dir) else self._published_record(cell)
        saved = _read_json(os.path.join(run_dir, "record.json"))
        # A record belongs to one metrics.json: a re-run that rewrote it gets a new record
        # (and stamp); a folder copied from another machine keeps that machine's stamp.
        if isinstance(saved, dict) and saved.get("metrics_sha256") == _digest(run_dir):
            return saved
        record = self._record(cell, metrics, run_dir)
        atomic_write_text(os.path.join(run_dir, "record.json"),
                          json.dumps(record, indent=2, sort_keys=True) + "\n")
        return record

    def _published_record(self, cell):
        """The published record of `cell` if it holds complete metrics of the same settings."""
        record = self.published_records.get(os.path.relpath(self.run_dir(cell), self.runs_dir))
        if cell in self.train_here or record is None or not _complete(record, self._validated(cell)):
            return None
        if not cell.is_baseline:
            wanted = _config_view(self.config(cell).to_dict())
            if not isinstance(record.get("config"), dict) or changed_settings(
                    record["config"], wanted):
                logging.info("the published record of %s has other settings; not used",
                             record["run_dir"])
                return None
        return record

    def _validated(self, cell):
        """Whether the cell's metrics include validation (a baseline or refit has none)."""
        return not cell.is_baseline and not self.config(cell).trainer.refit_epochs

    def _record(self, cell, metrics, run_dir):
        record = {"method": cell.method, "dataset": cell.dataset,
                  "run_dir": os.path.relpath(run_dir, self.runs_dir),
                  "test": {key: metrics["test"][key] for key in REPORTED_METRICS},
                  "stamp": self.stamp, "metrics_sha256": _digest(run_dir),
                  "metrics_written": _written(run_dir)}
        if cell.is_baseline:
            record.update(seconds=metrics.get("seconds"), setting=metrics.get("setting"),
                          tuning=metrics.get("tuning"))
            return record
        valid = metrics["valid"]  # None for a refit run
        record.update(valid=valid and {key: valid[key] for key in REPORTED_METRICS},
                      best_epoch=metrics["best_epoch"], epochs_run=metrics["epochs_run"],
                      seconds_per_epoch=metrics["seconds_per_epoch"],
                      # None for runs made before the loop recorded CPU time and steal
                      cpu_seconds_per_epoch=metrics.get("cpu_seconds_per_epoch"),
                      steal_fraction=metrics.get("steal_fraction"),
                      # None for runs made before the loop recorded them (Table 4 needs
                      # them to extrapolate passes capped by max_train_batches)
                      seconds_per_train_batch=metrics.get("seconds_per_train_batch"),
                      train_batches_per_pass=metrics.get("train_batches_per_pass"),
                      config=_config_view(metrics["flags"]))
        return record

    def run(self, cell):
        """The cell's record, training or resuming it first; None if pending or failed."""
        record = self.finished_record(cell)
        if record is not None:
            return record
        run_dir = self.run_dir(cell)
        with _cell_lock(run_dir) as locked:
            if not locked:
                logging.warning("%s is being trained by another process; skipped", run_dir)
                self.pending.append(run_dir)
                return None
            record = self.finished_record(cell)  # finished while we waited for the lock?
            if record is not None:
                return record
            start = time.perf_counter()
            try:
                if cell.is_baseline:
                    self._run_baseline(cell, run_dir)
                else:
                    self._train(cell, run_dir)
            except RunStopped:
                raise  # a stop signal ends the whole invocation, not just this cell
            except MTDError as error:
                logging.error("%s failed: %s", run_dir, error)
                self.failures[run_dir] = str(error)
                return None
            logging.info("%s finished in %.1f s", run_dir, time.perf_counter() - start)
        return self.finished_record(cell)

    def _train(self, cell, run_dir):
        # Imported here: a script that trains nothing does not pay for TensorFlow.
        from mtd_tf import job  # pylint: disable=import-outside-toplevel
        from mtd_tf.training.timing import RunTimer  # pylint: disable=import-outside-toplevel

        config = self.config(cell)
        cell_file = os.path.join(run_dir, "cell.json")
        if not os.path.exists(cell_file):
            atomic_write_text(cell_file, json.dumps(
                {"cell": cell.name, "config": _config_view(config.to_dict()),
                 "started": self.stamp}, indent=2, sort_keys=True) + "\n")
        logging.info("training %s", run_dir)
        job.train_and_evaluate(config, observers=[RunTimer()])

    def _run_baseline(self, cell, run_dir):
        # Imported here: a script that trains no baseline does not pay for them.
        from mtd_tf import rank_files  # pylint: disable=import-outside-toplevel
        from mtd_tf.baselines import methods  # pylint: disable=import-outside-toplevel

        start = time.perf_counter()
        dataset = registry.load_dataset(cell.dataset, self.data_dir, seed=self.base_for(
            cell.dataset)["seed"])
        report, ranks = methods.fit_and_report(
            cell.method, dataset, tune=methods.settings_class(cell.method) is not None)
        report["seconds"] = time.perf_counter() - start
        rank_files.write_ranks(os.path.join(run_dir, rank_files.TEST_RANKS_FILE), ranks)
        atomic_write_text(os.path.join(run_dir, "metrics.json"),
                          json.dumps(report, indent=2, sort_keys=True) + "\n")

    def exit_code(self):
        """0 when every cell finished or is pending elsewhere, 1 when one failed."""
        for run_dir, error in self.failures.items():
            print(f"FAILED {run_dir}: {error}", file=sys.stderr)
        for run_dir in self.pending:
            print(f"pending (trained by another process): {run_dir}", file=sys.stderr)
        return 1 if self.failures else 0


def _written(run_dir):
    """When metrics.json was written (UTC, ISO 8601): the run's end, even if recorded later."""
    seconds = os.stat(os.path.join(run_dir, "metrics.json")).st_mtime
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="seconds")


def _digest(run_dir):
    try:
        with open(os.path.join(run_dir, "metrics.json"), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


@contextlib.contextmanager
def _cell_lock(run_dir):
    """Yields True while holding the folder's lock, False if another process holds it."""
    with folder_lock.exclusive_lock(os.path.join(run_dir, ".lock")) as holder:
        yield holder is None


def check_dataset(dataset, data_dir):
    """A typo in --datasets fails before any cell trains, not hours later at its turn (or
    never, as an empty section of a --report_only table)."""
    folder = os.path.join(data_dir, registry.canonical_name(dataset))
    if registry.is_named_dataset(dataset) or os.path.isdir(folder):
        return
    closest = registry.closest_dataset_name(dataset, data_dir)
    hint = f"; did you mean {closest}?" if closest else ""
    raise ConfigError(f"unknown dataset {dataset!r} in --datasets: not a published dataset, "
                      f"'synthetic', or a folder in {data_dir}{hint}")


def runner_from_flags(stamp, results_name=None, use_published=True):
    """The invocation's `CellRunner`; `results_name` names the script's own results file,
    whose records win over other files' (`published.load_published_records`);
    `use_published=False` for scripts that need the run folders themselves (checkpoints),
    not just the records."""
    records = (published.load_published_records(FLAGS.results_dir, own=results_name)
               if use_published else None)
    return CellRunner(FLAGS.runs_dir, registry.resolve_data_dir(FLAGS.data_dir),
                      base_settings_from_flags(), stamp, records)


def resolve_cells(runner, cells, publish, report_only):
    """Records of all `cells`: finished ones first, then each missing one trained in order.

    `publish(records)` ({Cell: record or None}) is called once the finished cells are read
    and again after every cell that trains, so the results files follow the runs.
    """
    records = {cell: runner.finished_record(cell) for cell in cells}
    publish(records)
    if not report_only:
        for cell in cells:
            if records[cell] is None:
                records[cell] = runner.run(cell)
                publish(records)
    return records


def resolve_refits(runner, refits, records, publish, report_only):
    """`resolve_cells` of refits chosen from `records` (their candidates' records), each
    publish showing the candidates' records beside the refits'."""
    return resolve_cells(runner, list(refits),
                         lambda refit_records: publish({**records, **refit_records}),
                         report_only)
