"""A tokenizer's configuration: the schema (``schema``), the front end's section
(``frontend``) and the strict YAML reader (``yaml_io``)."""

from tokquant.tokenizer.config.frontend import FrontendConfig
from tokquant.tokenizer.config.schema import (
    FeatureConfig,
    ProjectionConfig,
    TokenizerConfig,
    TrainConfig,
)
from tokquant.tokenizer.config.yaml_io import load_yaml

__all__ = [
    "FeatureConfig",
    "FrontendConfig",
    "ProjectionConfig",
    "TokenizerConfig",
    "TrainConfig",
    "load_yaml",
]
