"""Configuration of the core eval (SAEBench's `core`: L0, explained variance, MSE, CE loss recovered, KL) on
held-out text."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.core.eval_config import CoreEvalConfig as SaeBenchCoreEvalConfig

HELD_OUT_DATASET_DESCRIPTION = "sae-probes held-out texts (embedded.probing_data.held_out_texts)"


@dataclass
class CoreEvalConfig(SaeBenchCoreEvalConfig):
    dataset: str = Field(
        default=HELD_OUT_DATASET_DESCRIPTION,
        title="Dataset",
        description="Text evaluated on: the held-out evaluation texts kept out of the embedded training corpus, "
        "shuffled with `random_seed` and packed into `context_size` windows with BOS (as SAELens packs).",
    )
    random_seed: int = Field(
        default=42,
        title="Random Seed",
        description="Seed of the held-out text shuffle.",
    )
    compute_kl: bool = Field(default=True, title="Compute KL", description="Compute KL divergence")
    compute_ce_loss: bool = Field(
        default=True, title="Compute CE Loss", description="Compute cross-entropy loss"
    )
    compute_l2_norms: bool = Field(default=True, title="Compute L2 Norms", description="Compute L2 norms")
    compute_sparsity_metrics: bool = Field(
        default=True, title="Compute Sparsity Metrics", description="Compute sparsity metrics"
    )
    compute_variance_metrics: bool = Field(
        default=True, title="Compute Variance Metrics", description="Compute variance metrics"
    )
    compute_featurewise_density_statistics: bool = Field(
        default=True,
        title="Compute Featurewise Density Statistics",
        description="Compute featurewise density statistics",
    )
    compute_featurewise_weight_based_metrics: bool = Field(
        default=True,
        title="Compute Featurewise Weight-Based Metrics",
        description="Compute featurewise weight-based metrics",
    )
    exclude_special_tokens_from_reconstruction: bool = Field(
        default=True,
        title="Exclude Special Tokens from Reconstruction",
        description="Exclude special tokens like BOS, EOS, PAD from reconstruction (their activations are "
        "attention-sink outliers the SAEs are not trained on)",
    )

    exclude_untrained_positions: bool = Field(
        default=True,
        title="Exclude Untrained Positions",
        description="Score each SAE only on the window positions it was trained on (SAELens's `seqpos_slice` in "
        "its metadata), like the special tokens: on SmolLM2 a window's first text token carries massive "
        "activations that an SAE trained with `seqpos_slice=(2, None)` never saw and that would dominate MSE and "
        "explained variance",
    )


def cpu_preset(model_name: str) -> CoreEvalConfig:
    """The CPU preset: 2 x 8 windows of 128 tokens for CE loss / KL (three full forwards each), 4 x 8 windows
    for L0, explained variance and MSE (forward up to the hook only)."""
    return CoreEvalConfig(
        model_name=model_name,
        batch_size_prompts=8,
        n_eval_reconstruction_batches=2,
        n_eval_sparsity_variance_batches=4,
    )
