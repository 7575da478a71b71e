"""Serving: the SavedModel, top-K retrieval, and the CLIs that read an export
(`python -m mtd_tf.serving.predict`, `python -m mtd_tf.serving.evaluate`)."""
