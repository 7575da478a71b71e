"""The hyper-parameters every next-item model has (and those several share), declared
once, and the base of the comparison models' configs.

MTD's config (`mtd_config.MTDConfig`) and each comparison model's config declare these
fields through the functions below, so `--embedding_dim` means the same for every
`--model` and the options beyond the papers (cosine scores, the repeat head) are offered
to every model alike (the fairness condition of the comparison, DESIGN.md section 8).
"""

import dataclasses
import math
from typing import ClassVar

from mtd_tf import settings
from mtd_tf.errors import ConfigError
from mtd_tf.serving.repeat_prior import REPEAT_PRIOR_SETTINGS
from mtd_tf.serving.repeat_prior import RepeatPrior


def embedding_dim(default=100):
    return settings.setting(default, "Embedding size d.", settings.positive_int)


def max_len(default=50):
    return settings.setting(default, "Sessions keep their last max_len items.",
                            settings.positive_int)


def dropout(default, help="Dropout rate."):
    return settings.setting(default, help, settings.in_range(0, 1, high_open=True))


def num_blocks(default=1):
    return settings.setting(default, "Stacked self-attention blocks.",
                            settings.non_negative_int)


def num_heads(default=1):
    return settings.setting(default, "Attention heads per block (must divide d).",
                            settings.positive_int)


def check_heads_divide_width(config):
    """Raises `ConfigError` unless `config.num_heads` divides `config.embedding_dim`: each
    head of a self-attention block reads d / num_heads columns (MTD, SASRec, CoSAN)."""
    if config.embedding_dim % config.num_heads:
        raise ConfigError(f"num_heads must divide embedding_dim ({config.embedding_dim}), "
                          f"got {config.num_heads}")


def score_scale():
    return settings.setting(
        0.0, "0: scores are dot products (the papers'); s > 0: s times the cosine of the "
        "session and item vectors (normalised scores with temperature 1/s).",
        settings.in_range(0, math.inf, high_open=True))


def repeat_head():
    return settings.setting(
        False, "Repeat-aware output head (beyond the papers): the next item from a learned "
        "mix of re-clicking a prefix item and the catalogue-wide softmax (RepeatNet).")


def repeat_from_scores():
    return settings.setting(
        False, "With repeat_head: its repeat part starts from the model's own scores of the "
        "prefix's items (plus attention and recency) and its explore part leaves them out.")


def repeat_bonus():
    return settings.setting(
        0.0, "Ranking-time prior (beyond the papers): added to the score of every item the "
        "session already holds (a repeat head's log-probability with repeat_head); chosen "
        "on validation by mtd_tf.serving.tune_repeat_prior.",
        _finite)


def repeat_count_bonus():
    return settings.setting(
        0.0, "Ranking-time prior: times log(the item's clicks in the session), added to "
        "its score.", _finite)


def repeat_recency_bonus():
    return settings.setting(
        0.0, "Ranking-time prior: times log(1 + clicks since the item's last click), added "
        "to its score (negative: recent items first).", _finite)


def repeat_lift_limit():
    return settings.setting(
        0, "Ranking-time prior: only this many of the session's items at most, those of "
        "highest score plus bonus, get it (0: every item).", settings.non_negative_int)


_finite = settings.in_range(-math.inf, math.inf, low_open=True, high_open=True)


def check_repeat_options(repeat_head_on, from_scores):
    """Raises `ConfigError` for `repeat_from_scores` without the head it changes."""
    if from_scores and not repeat_head_on:
        raise ConfigError("repeat_from_scores needs repeat_head")


def prior_is_on(config):
    """Whether a model config's ranking-time prior adds anything."""
    return RepeatPrior.from_settings(
        {name: getattr(config, name) for name in REPEAT_PRIOR_SETTINGS}).active


@dataclasses.dataclass(frozen=True)
class ComparisonConfig:
    """Base of a comparison model's config: its fields are the model's constructor keywords
    beside `num_items`, and it builds the model; comparison models have no graph module.

    A subclass sets `name` (its `--model` value) and `model_class()`, and adds its own
    fields after these.
    """

    name: ClassVar[str] = ""
    has_graph_module: ClassVar[bool] = False
    # The paper's (or its released code's) training recipe as trainer settings, where it
    # differs from the trainer's defaults: the experiments' default candidate.
    paper_training: ClassVar[dict] = {}

    embedding_dim: int = embedding_dim()
    max_len: int = max_len()
    score_scale: float = score_scale()
    repeat_head: bool = repeat_head()
    repeat_from_scores: bool = repeat_from_scores()
    repeat_bonus: float = repeat_bonus()
    repeat_count_bonus: float = repeat_count_bonus()
    repeat_recency_bonus: float = repeat_recency_bonus()
    repeat_lift_limit: int = repeat_lift_limit()

    def __post_init__(self):
        settings.check_fields(self)
        check_repeat_options(self.repeat_head, self.repeat_from_scores)

    @staticmethod
    def default_frequency(dataset_frequency):
        """Session passes per epoch unless --frequency says otherwise: one, as in each paper
        (the dataset's f is MTD's ratio of passes to graph steps)."""
        del dataset_frequency
        return 1

    @property
    def variant(self):
        """The run's short name (run folders, reports): the model's name."""
        return self.name

    @classmethod
    def model_class(cls):
        raise NotImplementedError

    def build(self, num_items):
        """The built model for items 1..`num_items`."""
        model = self.model_class()(num_items=num_items, **dataclasses.asdict(self))
        model.build()
        return model

    def build_graph_module(self, num_items, l2):
        del num_items, l2
        return None
