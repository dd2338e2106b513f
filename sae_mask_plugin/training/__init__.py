"""Masked SAE training as thin SAELens subclasses: configs, the masked activations store, runners.

Names load on first use (PEP 562) and register the embedded model with TransformerLens, so a light module of this
package (`training.cli`, `training.settings`) imports without torch or SAELens, and the
runners' own imports cannot loop back through here. SAELens and SAEBench load models by name: `training.preflight`,
which every runner imports, registers the embedded model too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.embedded.model import register_with_transformer_lens
from sae_mask_plugin.lazy import lazy_exports

if TYPE_CHECKING:
    from sae_mask_plugin.embedded.model import HookNotFoundError
    from sae_mask_plugin.training.activations_store import MaskedActivationsStore, MaskTokenNormError
    from sae_mask_plugin.training.cache import MaskedCacheActivationsRunner
    from sae_mask_plugin.training.config import (
        MaskedCacheActivationsRunnerConfig,
        MaskedLanguageModelSAERunnerConfig,
        MaskedMultiSAETrainingRunnerConfig,
    )
    from sae_mask_plugin.training.defaults import make_runner_config, train_sae
    from sae_mask_plugin.training.interruption import TrainingInterrupted, latest_complete_checkpoint
    from sae_mask_plugin.training.runner import (
        MaskedLanguageModelSAETrainingRunner,
        MaskedMultiSAETrainingRunner,
    )

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
    "train_sae",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["MaskedActivationsStore", "MaskTokenNormError"], f"{__name__}.activations_store"),
        "MaskedCacheActivationsRunner": f"{__name__}.cache",
        **dict.fromkeys(
            [
                "MaskedCacheActivationsRunnerConfig",
                "MaskedLanguageModelSAERunnerConfig",
                "MaskedMultiSAETrainingRunnerConfig",
            ],
            f"{__name__}.config",
        ),
        **dict.fromkeys(["make_runner_config", "train_sae"], f"{__name__}.defaults"),
        **dict.fromkeys(["TrainingInterrupted", "latest_complete_checkpoint"], f"{__name__}.interruption"),
        "HookNotFoundError": "sae_mask_plugin.embedded.model",
        **dict.fromkeys(
            ["MaskedLanguageModelSAETrainingRunner", "MaskedMultiSAETrainingRunner"], f"{__name__}.runner"
        ),
    },
    on_load=register_with_transformer_lens,
)
