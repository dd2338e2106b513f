"""sae-mask-plugin: masked regularization for sparse autoencoders, as a SAELens plugin."""

from sae_mask_plugin.embedded import (
    EMBEDDED_MODEL_NAME,
    load_embedded_model,
    load_model,
    register_with_transformer_lens,
)

register_with_transformer_lens()

__all__ = [
    "EMBEDDED_MODEL_NAME",
    "load_embedded_model",
    "load_model",
]
