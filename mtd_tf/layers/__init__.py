"""Keras layers of MTD: the session side (eq. 1-4), the graph side (eq. 6-7) and the
optional repeat-aware output head."""

from mtd_tf.layers.attentive_aggregation import AttentiveAggregation
from mtd_tf.layers.bilinear_discriminator import BilinearDiscriminator
from mtd_tf.layers.graph_attention import GraphAttention
from mtd_tf.layers.narm_encoder import NARMEncoder
from mtd_tf.layers.outer_memory import OuterMemory
from mtd_tf.layers.positional_decay_pooling import PositionalDecayPooling
from mtd_tf.layers.repeat_explore import RepeatExploreHead
from mtd_tf.layers.self_attention import SelfAttentionBlock
from mtd_tf.layers.session_gru import SessionGRU
from mtd_tf.layers.sparse_gcn import SparseGCN

__all__ = [
    "AttentiveAggregation",
    "BilinearDiscriminator",
    "GraphAttention",
    "NARMEncoder",
    "OuterMemory",
    "PositionalDecayPooling",
    "RepeatExploreHead",
    "SelfAttentionBlock",
    "SessionGRU",
    "SparseGCN",
]
