"""sae-mask-plugin: masked regularization for sparse autoencoders, as a SAELens plugin."""

from sae_mask_plugin.embedded import (
    EMBEDDED_MODEL_NAME,
    load_embedded_model,
    load_model,
    register_with_transformer_lens,
)
from sae_mask_plugin.masking import MaskingConfig
from sae_mask_plugin.training import (
    MaskedActivationsStore,
    MaskedCacheActivationsRunner,
    MaskedCacheActivationsRunnerConfig,
    MaskedLanguageModelSAERunnerConfig,
    MaskedLanguageModelSAETrainingRunner,
    MaskedMultiSAETrainingRunner,
    MaskedMultiSAETrainingRunnerConfig,
    make_runner_config,
    read_masking_metadata,
    train_sae,
)

register_with_transformer_lens()

__all__ = [
    "MaskedActivationsStore",
    "MaskedCacheActivationsRunner",
    "MaskedCacheActivationsRunnerConfig",
    "MaskedLanguageModelSAERunnerConfig",
    "MaskedLanguageModelSAETrainingRunner",
    "MaskedMultiSAETrainingRunner",
    "MaskedMultiSAETrainingRunnerConfig",
    "MaskingConfig",
    "make_runner_config",
    "read_masking_metadata",
    "train_sae",
    "EMBEDDED_MODEL_NAME",
    "load_embedded_model",
    "load_model",
]
