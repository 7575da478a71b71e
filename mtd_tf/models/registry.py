"""Every next-item model by its `--model` name: the config class that declares its
hyper-parameters and builds it."""

from mtd_tf.models.cosan import CoSANConfig
from mtd_tf.models.csrm import CSRMConfig
from mtd_tf.models.gru4rec import GRU4RecConfig
from mtd_tf.models.mtd_config import MTDConfig
from mtd_tf.models.narm import NARMConfig
from mtd_tf.models.sasrec import SASRecConfig
from mtd_tf.models.srgnn import SRGNNConfig
from mtd_tf.models.stamp import STAMPConfig

MODEL_CONFIGS = {config.name: config for config in (
    MTDConfig,
    CoSANConfig,
    CSRMConfig,
    GRU4RecConfig,
    NARMConfig,
    SASRecConfig,
    SRGNNConfig,
    STAMPConfig,
)}
DEFAULT_MODEL = MTDConfig.name
