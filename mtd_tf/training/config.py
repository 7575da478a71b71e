"""Every knob of a training run, in one validated, JSON-able record.

`main.py` fills it from flags; library code takes it as an argument and never reads flags.
"""

import dataclasses

from mtd_tf.errors import ConfigError
from mtd_tf.losses import MATMUL_DTYPES
from mtd_tf.model import VARIANTS

WRITEBACK_MODES = ("replace", "rescale")
SCORING_PRECISIONS = tuple(MATMUL_DTYPES)  # the names the loss knows, one list


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and paths (SPEC section 4 defaults).

    `frequency=None` takes the dataset's default from `mtd_tf.data.registry`.
    `graph_writeback`: `replace` writes the GCN output into the item table as the paper
    does; `rescale` first scales it to the table's mean row norm; `graph_mix` is the share
    of the new table that comes from the graph (1 = overwrite; see WORKSPACE.md).
    `score_scale`: 0 scores by dot product (paper); s > 0 by s times the cosine.
    `lr_decay`: the learning rate of epoch e (from 0) is `lr * lr_decay ** (e // lr_decay_every)`
    (1 = constant, as the paper).
    `scoring_precision`: dtype of the training step's three full-softmax matmuls
    (`bfloat16` was faster on this project's AMX CPU, GPUs are unmeasured; evaluation
    always scores in float32).
    `refit_epochs`: 0 (default) holds out the validation split and early-stops on it; K > 0
    trains on every training session for exactly K epochs, with no validation and no early
    stopping, and tests the last epoch (K is meant to be the best epoch of a validated run
    with otherwise equal settings: the paper's models saw all training sessions).
    """

    dataset: str = "synthetic"
    data_dir: str = "data"
    model_dir: str = "runs/default"
    variant: str = "mtd"
    epochs: int = 10
    frequency: int | None = None
    graph_steps: int = 1000
    graph_patience: int = 10
    graph_writeback: str = "replace"
    graph_mix: float = 1.0
    gcn_layers: int = 1
    batch_size: int = 512
    embedding_dim: int = 100
    num_blocks: int = 1
    num_heads: int = 1
    lr: float = 1e-3
    l2: float = 1e-6
    dropout: float = 0.2
    decay: float = 0.75
    max_len: int = 50
    patience: int = 3
    seed: int = 0
    export_top_k: int = 20
    max_train_batches: int | None = None
    scoring_precision: str = "float32"
    score_scale: float = 0.0
    lr_decay: float = 1.0
    lr_decay_every: int = 3
    refit_epochs: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.graph_writeback not in WRITEBACK_MODES:
            raise ConfigError(
                f"graph_writeback must be one of {WRITEBACK_MODES}, got {self.graph_writeback!r}")
        if self.scoring_precision not in SCORING_PRECISIONS:
            raise ConfigError(f"scoring_precision must be one of {SCORING_PRECISIONS}, "
                              f"got {self.scoring_precision!r}")
        positive = ("epochs", "graph_patience", "gcn_layers", "batch_size", "embedding_dim",
                    "num_heads", "max_len", "patience", "export_top_k", "lr_decay_every")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("num_blocks", "refit_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        if self.embedding_dim % self.num_heads:
            raise ConfigError(f"num_heads must divide embedding_dim ({self.embedding_dim}), "
                              f"got {self.num_heads}")
        for name in ("frequency", "max_train_batches"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or unset, got {value!r}")
        if not 0.0 < self.graph_mix <= 1.0:
            raise ConfigError(f"graph_mix must be in (0, 1], got {self.graph_mix!r}")
        if self.graph_steps < 0:
            raise ConfigError(f"graph_steps must be >= 0, got {self.graph_steps!r}")
        if not 0.0 <= self.decay < float("inf"):
            raise ConfigError(f"decay must be a finite number >= 0, got {self.decay!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.score_scale >= 0.0:
            raise ConfigError(f"score_scale must be >= 0, got {self.score_scale!r}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if not (0.0 < self.lr < float("inf") and 0.0 <= self.l2 < float("inf")):
            raise ConfigError(f"need finite lr > 0 and l2 >= 0, got lr={self.lr!r}, "
                              f"l2={self.l2!r}")

    @property
    def uses_graph(self):
        """The `lo` variant (and --graph_steps=0) trains without the cross-session module."""
        return self.variant != "lo" and self.graph_steps > 0

    @property
    def max_epochs(self):
        """Epochs a run may train: `refit_epochs` exactly when refitting, else `epochs`."""
        return self.refit_epochs or self.epochs

    def learning_rate(self, epoch):
        """Learning rate of the session step in `epoch` (0-based)."""
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)

    def to_dict(self):
        return dataclasses.asdict(self)


# Every field's default: what a settings record written before the field existed meant.
DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainConfig)}


def changed_settings(recorded, wanted):
    """Sorted names in `wanted` whose value `recorded` does not hold; a name missing from
    `recorded` (a field added after it was written) counts as its default."""
    return sorted(name for name, value in wanted.items()
                  if recorded.get(name, DEFAULTS.get(name)) != value)
