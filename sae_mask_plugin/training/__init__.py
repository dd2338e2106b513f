"""Masked SAE training as thin SAELens subclasses: configs, the masked activations store, runners, metadata."""

from sae_mask_plugin.embedded.model import register_with_transformer_lens
from sae_mask_plugin.training.activations_store import MaskedActivationsStore, MaskTokenNormError
from sae_mask_plugin.training.cache import MaskedCacheActivationsRunner
from sae_mask_plugin.training.config import (
    MaskedCacheActivationsRunnerConfig,
    MaskedLanguageModelSAERunnerConfig,
    MaskedMultiSAETrainingRunnerConfig,
)
from sae_mask_plugin.training.defaults import make_runner_config, train_sae
from sae_mask_plugin.training.interruption import TrainingInterrupted, latest_complete_checkpoint
from sae_mask_plugin.training.metadata import read_cache_masking, read_masking_metadata, read_masking_record
from sae_mask_plugin.training.preflight import HookNotFoundError
from sae_mask_plugin.training.runner import MaskedLanguageModelSAETrainingRunner, MaskedMultiSAETrainingRunner

# SAELens and SAEBench load models by name: the embedded one must resolve whenever this package is used.
register_with_transformer_lens()

__all__ = [
    "HookNotFoundError",
    "MaskTokenNormError",
    "MaskedActivationsStore",
    "MaskedCacheActivationsRunner",
    "MaskedCacheActivationsRunnerConfig",
    "MaskedLanguageModelSAERunnerConfig",
    "MaskedLanguageModelSAETrainingRunner",
    "MaskedMultiSAETrainingRunner",
    "MaskedMultiSAETrainingRunnerConfig",
    "TrainingInterrupted",
    "latest_complete_checkpoint",
    "make_runner_config",
    "read_cache_masking",
    "read_masking_metadata",
    "read_masking_record",
    "train_sae",
]
