"""sae-mask-plugin: masked regularization for sparse autoencoders, as a SAELens plugin.

The public names load on first use (PEP 562), so `import sae_mask_plugin` and `sae-mask --help` import no torch,
SAELens or TransformerLens. Using any public name registers the embedded model name with TransformerLens
(`register_with_transformer_lens`), so SAELens and SAEBench load it by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.lazy import lazy_exports

__version__ = "0.1.0"
"""The package version: the only place it is written (pyproject.toml reads it, `sae-mask --version` prints it)."""

if TYPE_CHECKING:
    from sae_mask_plugin.embedded import (
        EMBEDDED_MODEL_NAME,
        load_embedded_model,
        load_model,
        register_with_transformer_lens,
    )
    from sae_mask_plugin.errors import SaeMaskUserError
    from sae_mask_plugin.masking import MaskingConfig
    from sae_mask_plugin.sae_metadata import read_masking_metadata
    from sae_mask_plugin.training import (
        MaskedActivationsStore,
        MaskedCacheActivationsRunner,
        MaskedCacheActivationsRunnerConfig,
        MaskedLanguageModelSAERunnerConfig,
        MaskedLanguageModelSAETrainingRunner,
        MaskedMultiSAETrainingRunner,
        MaskedMultiSAETrainingRunnerConfig,
        make_runner_config,
        train_sae,
    )

__all__ = [
    "__version__",
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
    "register_with_transformer_lens",
    "SaeMaskUserError",
]


def _register_embedded_model() -> None:
    from sae_mask_plugin.embedded.model import register_with_transformer_lens

    register_with_transformer_lens()


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ["EMBEDDED_MODEL_NAME", "load_embedded_model", "load_model", "register_with_transformer_lens"],
            "sae_mask_plugin.embedded",
        ),
        "MaskingConfig": "sae_mask_plugin.masking",
        "SaeMaskUserError": "sae_mask_plugin.errors",
        "read_masking_metadata": "sae_mask_plugin.sae_metadata",
        **dict.fromkeys(
            [
                "MaskedActivationsStore",
                "MaskedCacheActivationsRunner",
                "MaskedCacheActivationsRunnerConfig",
                "MaskedLanguageModelSAERunnerConfig",
                "MaskedLanguageModelSAETrainingRunner",
                "MaskedMultiSAETrainingRunner",
                "MaskedMultiSAETrainingRunnerConfig",
                "make_runner_config",
                "train_sae",
            ],
            "sae_mask_plugin.training",
        ),
    },
    on_load=_register_embedded_model,
)
