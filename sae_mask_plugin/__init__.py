"""sae-mask-plugin: masked regularization for sparse autoencoders, as a SAELens plugin."""
