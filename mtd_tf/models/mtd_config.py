"""MTD's hyper-parameters: one validated record, from which `main.py`'s flags, the
experiments' settings and `MTDModel`'s own checks are generated (`mtd_tf.settings`).

The paper's variants are presets of two orthogonal settings, the session encoder and the
graph encoder.
"""

import dataclasses
import math
from typing import ClassVar

from mtd_tf import settings
from mtd_tf.errors import ConfigError
from mtd_tf.models import model_settings

WRITEBACK_MODES = ("replace", "rescale")

# Session encoders: self-attention blocks over items plus positions, then aggregation and
# pooling (the paper's); attentive aggregation over plain item embeddings (`va`); the same
# plus positional-decay pooling (`at`).
SESSION_ENCODERS = ("self_attention", "vanilla", "vanilla_decay")
GRAPH_ENCODERS = ("gcn", "gat", "none")
# The paper's ablation variants (Figure 3) as presets of the two encoders.
VARIANTS = {
    "mtd": ("self_attention", "gcn"),
    "lo": ("self_attention", "none"),
    "va": ("vanilla", "gcn"),
    "at": ("vanilla_decay", "gcn"),
    "ga": ("self_attention", "gat"),
}
CUSTOM_VARIANT = "custom"


def variant_of(session_encoder, graph_encoder):
    """The preset name of an encoder pair, or "custom"."""
    return next((name for name, pair in VARIANTS.items()
                 if pair == (session_encoder, graph_encoder)), CUSTOM_VARIANT)


@dataclasses.dataclass(frozen=True)
class MTDConfig:
    """MTD's hyper-parameters (DESIGN.md section 4 defaults), one validated record.

    `variant` is a preset of `session_encoder` and `graph_encoder`; an encoder given
    explicitly overrides it, and `variant` then names the resulting pair (or "custom").
    """

    name: ClassVar[str] = "mtd"  # its --model value

    variant: str = settings.setting(
        "mtd", "Preset of --session_encoder and --graph_encoder: mtd (full model), lo (no "
        "graph module), va (vanilla attention over item embeddings), at (va + positional "
        "decay), ga (graph attention encoder).", choices=(*VARIANTS, CUSTOM_VARIANT))
    session_encoder: str | None = settings.setting(
        None, "self_attention (paper), vanilla or vanilla_decay. Default: the variant's.",
        check=lambda value: None if value in (None, *SESSION_ENCODERS) else (
            f"must be one of {SESSION_ENCODERS}"))
    graph_encoder: str | None = settings.setting(
        None, "gcn (paper), gat or none. Default: the variant's.",
        check=lambda value: None if value in (None, *GRAPH_ENCODERS) else (
            f"must be one of {GRAPH_ENCODERS}"))
    embedding_dim: int = model_settings.embedding_dim()
    max_len: int = model_settings.max_len()
    num_blocks: int = model_settings.num_blocks()
    num_heads: int = model_settings.num_heads()
    dropout: float = model_settings.dropout(0.2)
    decay: float = settings.setting(0.75, "Positional decay lambda (eq. 4).",
                                    settings.in_range(0, math.inf, high_open=True))
    aggregation_product: bool = settings.setting(
        False, "Multiplicative attentive aggregation of the authors' code instead of eq. 3's "
        "sum.")
    score_scale: float = model_settings.score_scale()
    repeat_head: bool = model_settings.repeat_head()
    repeat_from_scores: bool = model_settings.repeat_from_scores()
    repeat_bonus: float = model_settings.repeat_bonus()
    repeat_count_bonus: float = model_settings.repeat_count_bonus()
    repeat_recency_bonus: float = model_settings.repeat_recency_bonus()
    repeat_lift_limit: int = model_settings.repeat_lift_limit()
    gcn_layers: int = settings.setting(1, "Layers of the graph encoder.", settings.positive_int)
    graph_writeback: str = settings.setting(
        "replace", "How the graph output enters the item table: replace (paper) or rescale to "
        "the table's mean row norm first.", choices=WRITEBACK_MODES)
    graph_mix: float = settings.setting(
        1.0, "Share of the graph output in the item table after write-back: "
        "E <- (1 - mix) E + mix H (1 = overwrite, as the paper).",
        settings.in_range(0, 1, low_open=True))

    def __post_init__(self):
        settings.check_fields(self)
        model_settings.check_repeat_options(self.repeat_head, self.repeat_from_scores)
        if self.variant == CUSTOM_VARIANT and None in (self.session_encoder, self.graph_encoder):
            raise ConfigError("variant=custom needs both session_encoder and graph_encoder")
        preset = VARIANTS.get(self.variant, (None, None))
        session_encoder = self.session_encoder or preset[0]
        graph_encoder = self.graph_encoder or preset[1]
        object.__setattr__(self, "session_encoder", session_encoder)
        object.__setattr__(self, "graph_encoder", graph_encoder)
        object.__setattr__(self, "variant", variant_of(session_encoder, graph_encoder))
        model_settings.check_heads_divide_width(self)

    @staticmethod
    def default_frequency(dataset_frequency):
        """Session passes per epoch unless --frequency says otherwise: the dataset's f."""
        return dataset_frequency

    @property
    def has_graph_module(self):
        return self.graph_encoder != "none"

    def build(self, num_items):
        """The built `MTDModel` for items 1..`num_items`."""
        from mtd_tf.models.mtd import MTDModel  # pylint: disable=import-outside-toplevel

        model = MTDModel(
            num_items=num_items, embedding_dim=self.embedding_dim, max_len=self.max_len,
            num_blocks=self.num_blocks, num_heads=self.num_heads, dropout=self.dropout,
            decay=self.decay, session_encoder=self.session_encoder,
            aggregation_product=self.aggregation_product, score_scale=self.score_scale,
            repeat_head=self.repeat_head, repeat_from_scores=self.repeat_from_scores,
            **{name: getattr(self, name) for name in model_settings.REPEAT_PRIOR_SETTINGS})
        model.build()
        return model

    def build_graph_module(self, num_items, l2):
        """The built `GraphInfomax` over this model's item table, or None (`lo`)."""
        if not self.has_graph_module:
            return None
        from mtd_tf.models.graph_infomax import GraphInfomax  # pylint: disable=import-outside-toplevel

        infomax = GraphInfomax(encoder=self.graph_encoder, num_layers=self.gcn_layers, l2=l2)
        infomax.build((num_items, self.embedding_dim))
        return infomax
