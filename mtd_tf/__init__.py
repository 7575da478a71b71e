"""mtd-tf: MTD (Huang et al., AAAI 2021) session-based recommendation in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
