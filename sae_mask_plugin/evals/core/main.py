"""SAEBench's core eval (`sae_bench.evals.core.main.run_evals`) on held-out text, offline.

SAEBench's core eval streams a hub dataset through a SAELens `ActivationsStore`; here a small token source
with the same surface serves packed held-out text instead (the held-out evaluation texts that the embedded
training corpus excludes), and the metrics, feature statistics and output are SAEBench's own.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from sae_bench.evals.core.eval_output import (
    CoreMetricCategories,
    MiscMetrics,
    ModelBehaviorPreservationMetrics,
    ModelPerformancePreservationMetrics,
    ReconstructionQualityMetrics,
    ShrinkageMetrics,
    SparsityMetrics,
    TokenStatsMetrics,
)
from sae_bench.evals.core.main import (
    calculate_misc_metrics,
    convert_feature_metrics,
    replace_nans_with_negative_one,
    run_evals,
)
from sae_lens import SAE
from transformer_lens import HookedTransformer

from sae_mask_plugin.clean_activations import packed_windows, special_token_ids
from sae_mask_plugin.embedded.probing_data import held_out_texts
from sae_mask_plugin.evals.activations import UntrainedPositions
from sae_mask_plugin.evals.common import LazyModel, run_each_sae, saebench_output_fields
from sae_mask_plugin.evals.core.eval_config import CoreEvalConfig
from sae_mask_plugin.evals.core.eval_output import CoreEvalOutput
from sae_mask_plugin.sae_metadata import trained_positions


class HeldOutTokens:
    """Packed held-out token windows [n_windows, context_size] behind the part of SAELens's
    `ActivationsStore` that SAEBench's core eval calls."""

    def __init__(self, model: HookedTransformer, config: CoreEvalConfig):
        self.context_size = config.context_size
        self.store_batch_size_prompts = config.batch_size_prompts
        windows_needed = config.batch_size_prompts * max(
            config.n_eval_reconstruction_batches, config.n_eval_sparsity_variance_batches
        )
        texts = held_out_texts()
        random.Random(config.random_seed).shuffle(texts)
        self.tokens = packed_windows(model, texts, config.context_size, windows_needed).to(model.cfg.device)
        self._next = 0

    def get_batch_tokens(self, batch_size: int | None = None) -> torch.Tensor:
        """The next `batch_size` windows [batch_size, context_size]."""
        batch_size = batch_size or self.store_batch_size_prompts
        batch = self.tokens[self._next : self._next + batch_size]
        self._next += batch_size
        return batch

    def reset_input_dataset(self) -> None:
        self._next = 0


def ignored_tokens(
    model: HookedTransformer, sae: SAE, config: CoreEvalConfig
) -> set[int | UntrainedPositions]:
    """What the core eval leaves out: the special tokens, and (`exclude_untrained_positions`) the window positions
    outside the SAE's training `seqpos_slice`."""
    ignored: set[int | UntrainedPositions] = set(special_token_ids(model))
    seqpos_slice = trained_positions(sae.cfg.metadata)
    if config.exclude_untrained_positions and seqpos_slice != (None,):
        ignored.add(UntrainedPositions(seqpos_slice))
    return ignored


def evaluate_sae(model: HookedTransformer, sae: SAE, sae_name: str, config: CoreEvalConfig) -> CoreEvalOutput:
    """SAEBench's core metrics of one SAE on held-out text."""
    metrics, feature_metrics = run_evals(
        sae=sae,
        activation_store=HeldOutTokens(model, config),  # type: ignore[arg-type]
        model=model,
        eval_config=config,
        ignore_tokens=ignored_tokens(model, sae, config),  # type: ignore[arg-type]
    )
    metrics["misc_metrics"] = calculate_misc_metrics(feature_metrics)
    metrics = replace_nans_with_negative_one(metrics)
    return CoreEvalOutput(
        eval_config=config,
        **saebench_output_fields(sae_name, sae),
        eval_result_metrics=CoreMetricCategories(
            model_behavior_preservation=ModelBehaviorPreservationMetrics(
                **metrics["model_behavior_preservation"]
            ),
            model_performance_preservation=ModelPerformancePreservationMetrics(
                **metrics["model_performance_preservation"]
            ),
            reconstruction_quality=ReconstructionQualityMetrics(**metrics["reconstruction_quality"]),
            shrinkage=ShrinkageMetrics(**metrics["shrinkage"]),
            sparsity=SparsityMetrics(**metrics["sparsity"]),
            token_stats=TokenStatsMetrics(**metrics["token_stats"]),
            misc_metrics=MiscMetrics(**metrics["misc_metrics"]),
        ),
        eval_result_details=convert_feature_metrics(replace_nans_with_negative_one(feature_metrics)),
        eval_result_unstructured={},
    )


def run_eval(
    config: CoreEvalConfig,
    selected_saes: list[tuple[str, SAE]],
    device: str,
    output_path: str,
    force_rerun: bool = False,
    model: HookedTransformer | LazyModel | None = None,
    cache_path: str | None = None,
) -> dict[str, dict[str, Any]]:
    """SAEBench-style entry: core metrics of each `(name, SAE)`, one JSON per SAE in `output_path`; `model` as
    in `evals.common.run_each_sae`. `cache_path` is unused (the core eval runs the SAE inside the model's
    forward, so nothing is shared across SAEs) and accepted for a uniform signature."""

    def evaluate(sae_name: str, sae: SAE, lazy: LazyModel, cache_root: Path) -> CoreEvalOutput:
        with torch.no_grad():
            return evaluate_sae(lazy.get(), sae, sae_name, config)

    return run_each_sae(
        config, selected_saes, device, output_path, force_rerun, model, None, "core", evaluate
    )
