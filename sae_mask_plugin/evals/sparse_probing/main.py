"""Sparse probing offline: k-sparse probes on SAE latents vs. a dense probe on raw activations.

The data are sae-probes' binary datasets (read offline by `embedded.probing_data`), the split, latent ranking
and probes are sae-probes' functions (`evals.probing`), and activations come from the shared on-disk cache
(`evals.activations`), so only the SAE-dependent work is repeated per SAE. The output follows SAEBench's
`sparse_probing_sae_probes` format.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch
from sae_bench.evals.sparse_probing_sae_probes.eval_output import (
    SaeProbesLlmMetrics,
    SaeProbesMetricCategories,
    SaeProbesResultDetail,
    SaeProbesSaeMetrics,
)
from sae_lens import SAE
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from sae_mask_plugin.embedded.probing_data import load_probing_dataset
from sae_mask_plugin.evals.activations import ActivationCache
from sae_mask_plugin.evals.common import LazyModel, encode, run_each_sae, saebench_output_fields
from sae_mask_plugin.evals.means import mean_of_present
from sae_mask_plugin.evals.probing import (
    balanced_split,
    fit_probe,
    on_cached_activations,
    probe_scores,
    rank_latents,
)
from sae_mask_plugin.evals.sparse_probing.eval_config import SparseProbingEvalConfig
from sae_mask_plugin.evals.sparse_probing.eval_output import SparseProbingEvalOutput


def dataset_split(
    cache: ActivationCache, dataset: str, config: SparseProbingEvalConfig
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    """(x_train [n_train, d], y_train, x_test [n_test, d], y_test) of a dataset, activations from the cache."""
    frame = load_probing_dataset(dataset)
    y = frame["target"].to_numpy()
    train, test = balanced_split(y, config.num_train, config.num_test, config.random_seed, dataset)
    rows = np.concatenate([train, test])
    x = cache.get(dataset, frame["prompt"].iloc[rows].tolist())
    return x[: len(train)], y[train], x[len(train) :], y[test]


def _top_k_fields(k: int, scores: dict[str, float]) -> dict[str, float]:
    """SAEBench's fixed `sae_top_{k}_*` fields for this k (none when SAEBench has no field for it)."""
    fields = {f"sae_top_{k}_{name}": value for name, value in scores.items()}
    return {
        name: value for name, value in fields.items() if name in SaeProbesResultDetail.__dataclass_fields__
    }


def evaluate_sae(
    sae: SAE,
    sae_name: str,
    config: SparseProbingEvalConfig,
    cache: ActivationCache,
) -> SparseProbingEvalOutput:
    """Sparse probing of one SAE over `config.dataset_names`."""
    details: list[SaeProbesResultDetail] = []
    selected: dict[str, dict[int, list[int]]] = {}
    dense_strength: dict[str, float] = {}
    for dataset in tqdm(config.dataset_names, desc="sparse probing datasets", leave=False):
        x_train, y_train, x_test, y_test = dataset_split(cache, dataset, config)
        dense = fit_probe(x_train, y_train, x_test, y_test, "l2", config.random_seed)
        dense_strength[dataset] = float(dense.classifier.C)
        latents_train, latents_test = encode(sae, x_train), encode(sae, x_test)
        order = rank_latents(latents_train, y_train)
        by_k: dict[int, dict[str, float]] = {}
        for k in config.ks:
            top = order[:k]
            probe = fit_probe(
                latents_train[:, top],
                y_train,
                latents_test[:, top],
                y_test,
                config.reg_type,
                config.random_seed,
            )
            by_k[k] = probe_scores(probe, latents_test[:, top], y_test)
            selected.setdefault(dataset, {})[k] = top.tolist()
        fixed = {
            name: value for k, scores in by_k.items() for name, value in _top_k_fields(k, scores).items()
        }
        llm = {f"llm_{name}": value for name, value in probe_scores(dense, x_test, y_test).items()}
        details.append(SaeProbesResultDetail(dataset_name=dataset, sae_metrics_by_k=by_k, **llm, **fixed))

    mean_by_k = {
        k: {
            name: statistics.mean(d.sae_metrics_by_k[k][name] for d in details)
            for name in details[0].sae_metrics_by_k[k]
        }  # type: ignore[index]
        for k in config.ks
    }
    sae_fields = {
        name: mean_of_present(getattr(d, name) for d in details)
        for name in SaeProbesSaeMetrics.__dataclass_fields__
        if name.startswith("sae_top_")
    }
    llm_fields = {
        name: mean_of_present(getattr(d, name) for d in details)
        for name in SaeProbesLlmMetrics.__dataclass_fields__
    }
    return SparseProbingEvalOutput(
        eval_config=config,
        **saebench_output_fields(sae_name, sae),
        eval_result_metrics=SaeProbesMetricCategories(
            llm=SaeProbesLlmMetrics(**llm_fields), sae=SaeProbesSaeMetrics(**sae_fields)
        ),
        eval_result_details=details,
        sae_metrics_by_k=mean_by_k,
        eval_result_unstructured={"dense_probe_C": dense_strength, "selected_latents": selected},
    )


def run_eval(
    config: SparseProbingEvalConfig,
    selected_saes: list[tuple[str, SAE]],
    device: str,
    output_path: str,
    force_rerun: bool = False,
    model: HookedTransformer | LazyModel | None = None,
    cache_path: str | None = None,
) -> dict[str, dict[str, Any]]:
    """SAEBench-style entry: sparse probing of each `(name, SAE)`, one JSON per SAE in `output_path`; `model`
    and `cache_path` (LLM activations) as in `evals.common.run_each_sae`."""
    evaluate = on_cached_activations(config, evaluate_sae)
    return run_each_sae(
        config, selected_saes, device, output_path, force_rerun, model, cache_path, "sparse probing", evaluate
    )
