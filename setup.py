"""Installable package for mtd-tf (MTD, Huang et al., AAAI 2021, in TensorFlow 2 / Keras 3)."""
import setuptools

setuptools.setup(
    name="mtd-tf",
    version="0.1.0",
    description="MTD session-based recommendation (AAAI 2021) in TensorFlow 2 / Keras 3",
    packages=setuptools.find_packages(include=["mtd_tf", "mtd_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3",
        "numpy",
        "scipy",
        "pandas",
        "absl-py",
        "pyarrow",
        "tensorboard",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "hypothesis", "matplotlib"],
        "experiments": ["matplotlib"],
    },
    entry_points={"console_scripts": ["mtd-tf=mtd_tf.main:run"]},
)
