"""A tokenizer's configuration: the schema (``schema``), the front end's section
(``frontend``) and the strict YAML reader (``yaml_io``)."""

from tokquant.storage.safe_yaml import load_yaml
from tokquant.tokenizer.config.frontend import FrontendConfig
from tokquant.tokenizer.config.schema import (
    FeatureConfig,
    ProjectionConfig,
    TokenizerConfig,
    TrainConfig,
)

__all__ = [
    "FeatureConfig",
    "FrontendConfig",
    "ProjectionConfig",
    "TokenizerConfig",
    "TrainConfig",
    "load_yaml",
]
