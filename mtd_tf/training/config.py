"""A run's settings: the trainer's (`TrainerConfig`) beside the model's (`MTDConfig`, or
the config of the comparison model that `model` names, `mtd_tf.models.registry`).

Each setting is declared once, as a field with its help and check (`mtd_tf.settings`);
`main.py` generates its flags from them. `TrainConfig` pairs the two parts and reads and
writes them as one flat record (`settings.json`, metrics.json's "flags", the experiments'
`key=value` settings), whose keys are the field names; `model` picks the model part.
"""

import dataclasses
import math
import os

from mtd_tf import settings
from mtd_tf.errors import ConfigError
from mtd_tf.losses import MATMUL_DTYPES
from mtd_tf.models.mtd_config import MTDConfig
from mtd_tf.models.mtd_config import VARIANTS
from mtd_tf.models.registry import DEFAULT_MODEL
from mtd_tf.models.registry import MODEL_CONFIGS
from mtd_tf.training.strategies import STRATEGIES

SCORING_PRECISIONS = tuple(MATMUL_DTYPES)  # the names the loss knows, one list
LOSSES = ("full_softmax", "sampled_softmax")
OPTIMIZERS = ("adam", "sparse_adam")
_POSITIVE_FINITE = settings.in_range(0, math.inf, low_open=True, high_open=True)


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """How a run trains, validates and where it writes (DESIGN.md section 4 defaults).

    `refit_epochs`: 0 holds out the validation split and early-stops on it; K > 0 trains
    on every training session for exactly K epochs and tests the last one (K is meant to
    be the best epoch of a validated run with otherwise equal settings: the paper's models
    saw all training sessions).
    """

    dataset: str = settings.setting("synthetic", "Dataset name.", flag=False)
    model: str = settings.setting(
        DEFAULT_MODEL, "Next-item model: mtd (the paper's; --variant picks its ablations) or "
        "a comparison model; each takes its own hyper-parameter flags.",
        choices=tuple(MODEL_CONFIGS))
    data_dir: str = settings.setting("data", "Folder holding dataset folders.", flag=False)
    model_dir: str | None = settings.setting(
        None, "Run folder: checkpoints/, best/, logs/ (TensorBoard), export/ (SavedModel), "
        "metrics.json. Default: runs/<dataset>_<variant> (for a comparison model, "
        "runs/<dataset>_<model>).")
    epochs: int = settings.setting(10, "Maximum epochs (graph step + f session passes each).",
                                   settings.positive_int)
    frequency: int | None = settings.setting(
        None, "Session passes per epoch (the paper's f). Default per dataset: the one its "
        "folder's dataset.json records, else yoochoose 1, diginetica 4, retailrocket 6, "
        "others 1; comparison models 1 (an epoch is one pass).",
        settings.optional_positive_int)
    graph_steps: int = settings.setting(
        1000, "Maximum Adam steps of the graph infomax phase per epoch (0 = none).",
        settings.non_negative_int)
    graph_patience: int = settings.setting(
        10, "Early-stopping patience of the graph phase on L_co.", settings.positive_int)
    batch_size: int = settings.setting(512, "Training and evaluation batch size.",
                                       settings.positive_int)
    lr: float = settings.setting(1e-3, "Adam learning rate (both steps).", _POSITIVE_FINITE)
    lr_decay: float = settings.setting(
        1.0, "Session-step learning rate factor every --lr_decay_every epochs (1 = constant, "
        "as the paper).", settings.in_range(0, 1, low_open=True))
    lr_decay_every: int = settings.setting(3, "Epochs between learning-rate decays.",
                                           settings.positive_int)
    l2: float = settings.setting(1e-6, "L2 weight lambda2.",
                                 settings.in_range(0, math.inf, high_open=True))
    patience: int = settings.setting(3, "Early stopping: epochs without a better valid P@20.",
                                     settings.positive_int)
    seed: int = settings.setting(0, "Random seed.", flag=False)
    export_top_k: int = settings.setting(20, "K of the exported serving signature.",
                                         settings.positive_int)
    max_train_batches: int | None = settings.setting(
        None, "Cap on batches per session pass (smoke runs and benchmarks).",
        settings.optional_positive_int)
    scoring_precision: str = settings.setting(
        "float32", "Dtype of the training step's full-softmax matmuls; bfloat16 was faster "
        "on an AMX CPU, GPUs are unmeasured (evaluation always scores in float32).",
        choices=SCORING_PRECISIONS)
    loss: str = settings.setting(
        "full_softmax", "L_in over all M items (full_softmax, the paper's) or over the "
        "target and --num_negatives shared popularity-drawn negatives (sampled_softmax, "
        "for large catalogues; evaluation still ranks all items).", choices=LOSSES)
    num_negatives: int = settings.setting(
        1024, "Negatives per step of --loss=sampled_softmax (at most the item count).",
        settings.positive_int)
    in_batch_negatives: bool = settings.setting(
        False, "With --loss=sampled_softmax, also use the batch's other targets as negatives.")
    optimizer: str = settings.setting(
        "adam", "Session-step optimizer: adam (the paper's), or sparse_adam: Adam that "
        "updates only the item-table rows a batch used and applies a row's skipped steps "
        "when it is next used or evaluated (Adam's numbers up to where eps sits; a "
        "sampled-softmax step then costs the same for any catalogue size).",
        choices=OPTIMIZERS)
    warm_start_from: str | None = settings.setting(
        None, "A finished run folder whose best weights start this run (daily retraining on "
        "a newer dataset): items are matched by raw id (both datasets need items.tsv), new "
        "items start fresh, gone ones are dropped; same model settings; the optimizer "
        "restarts.")
    refit_epochs: int = settings.setting(
        0, "0: hold out the validation split and early-stop on it. K > 0: train on every "
        "training session for exactly K epochs (take K from a validated run's best epoch), "
        "no validation, and test the last epoch.", settings.non_negative_int)
    strategy: str = settings.setting(
        "default", "How training is spread: default (one device), mirrored "
        "(tf.distribute.MirroredStrategy over this machine's GPUs), multi_worker "
        "(tf.distribute.MultiWorkerMirroredStrategy over the machines of the TF_CONFIG "
        "environment variable: the same command on each; the chief writes --model_dir, "
        "which every worker must be able to read).", choices=STRATEGIES)
    peer_timeout: float = settings.setting(
        300.0, "With --strategy=multi_worker: seconds to wait at start-up for every worker "
        "of TF_CONFIG before stopping with an error (a worker lost mid-run is detected by "
        "TensorFlow's heartbeats within seconds).", _POSITIVE_FINITE)

    def __post_init__(self):
        settings.check_fields(self)

    @property
    def max_epochs(self):
        """Epochs a run may train: `refit_epochs` exactly when refitting, else `epochs`."""
        return self.refit_epochs or self.epochs

    def learning_rate(self, epoch):
        """Learning rate of the session step in `epoch` (0-based):
        `lr * lr_decay ** (epoch // lr_decay_every)`."""
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)


TRAINER_FIELDS = {field.name: field for field in dataclasses.fields(TrainerConfig)}
# Every model's fields by name (a name shared by several models is one setting; MTD's
# declaration is the one kept).
MODEL_FIELDS = {field.name: field for config_class in reversed(MODEL_CONFIGS.values())
                for field in dataclasses.fields(config_class)}
FIELDS = {**MODEL_FIELDS, **TRAINER_FIELDS}
# What a settings record written before a field existed meant: every such record is MTD's.
DEFAULTS = {field.name: field.default
            for part in (TrainerConfig, MTDConfig) for field in dataclasses.fields(part)}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs: `trainer` settings and the `model`'s hyper-parameters."""

    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    model: MTDConfig = dataclasses.field(default_factory=MTDConfig)  # or the `model`'s config

    @classmethod
    def from_settings(cls, **values):
        """Builds a config from flat `name=value` settings (the trainer's and the chosen
        model's fields); an unset `model_dir` becomes runs/<dataset>_<variant>."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; known: {sorted(FIELDS)}")
        trainer = TrainerConfig(**{name: value for name, value in values.items()
                                   if name in TRAINER_FIELDS})
        model_class = MODEL_CONFIGS[trainer.model]
        own = {field.name for field in dataclasses.fields(model_class)}
        foreign = sorted(name for name in values if name not in TRAINER_FIELDS and name not in own)
        if foreign:
            raise ConfigError(f"--{foreign[0]} is not a setting of --model={trainer.model} "
                              f"(its settings: {', '.join(sorted(own))})")
        config = cls(trainer=trainer, model=model_class(**{
            name: value for name, value in values.items() if name in own}))
        if config.trainer.model_dir is None:
            config = config.replace(model_dir=os.path.join(
                "runs", f"{config.trainer.dataset}_{config.model.variant}"))
        return config

    def replace(self, **values):
        """A copy with some flat settings changed (another `model` starts from its own
        defaults)."""
        current = self.to_dict()
        if values.get("model", self.trainer.model) != self.trainer.model:
            current = {name: value for name, value in current.items() if name in TRAINER_FIELDS}
        return TrainConfig.from_settings(**{**current, **values})

    def to_dict(self):
        """The flat record: {field name: value} of both parts."""
        return {**dataclasses.asdict(self.trainer), **dataclasses.asdict(self.model)}

    @property
    def uses_graph(self):
        """A graph module that trains: not `lo` (no graph encoder), and --graph_steps > 0."""
        return self.model.has_graph_module and self.trainer.graph_steps > 0


def complete_record(recorded):
    """A flat record written before the encoders were settings of their own names only its
    `variant`: fill in that preset's encoders."""
    pair = VARIANTS.get(recorded.get("variant"))
    if pair is None or "session_encoder" in recorded:
        return recorded
    return dict(recorded, session_encoder=pair[0], graph_encoder=pair[1])


def changed_settings(recorded, wanted):
    """Sorted names in `wanted` whose value `recorded` does not hold; a name missing from
    `recorded` (a field added after it was written) counts as its default."""
    recorded = complete_record(recorded)
    return sorted(name for name, value in wanted.items()
                  if recorded.get(name, DEFAULTS.get(name)) != value)
