"""Next-item models, one file each, behind one small protocol.

Training, evaluation and export use a model only through:

- `num_items` (M: items are 1..M, 0 is padding) and `max_len` (the longest prefix it reads);
- `query_vectors(item_ids, training=None)`: int [batch, len] right-padded prefixes ->
  float32 [batch, d'], the session side of the scores;
- `candidate_vectors()`: float32 [M, d'], the item side (row j = item j+1);
- the scores are `query_vectors(...) @ candidate_vectors()^T` ([batch, M], column j =
  item j+1), so full-softmax training, full ranking and top-K serving need nothing else;
- `trainable_variables`, for the optimizer and the L2 term;
- `repeat_head`: None, or a `layers.RepeatExploreHead` over the prefix, the query and the
  candidate vectors; training then minimises -log P(target) of its mixture, and ranking
  (evaluation and the SavedModel alike, `serving.retrieval`) orders items by log P.

A model's config (`MTDConfig` for MTD) builds it (`build(num_items)`) and, where the
model has one, its graph module (`build_graph_module(num_items, l2)`), which reads and
writes the model's `item_embeddings` table (DESIGN.md section 3).
"""

from mtd_tf.models.graph_infomax import GraphInfomax
from mtd_tf.models.mtd import MTDModel
from mtd_tf.models.mtd_config import MTDConfig

__all__ = ["GraphInfomax", "MTDConfig", "MTDModel"]
