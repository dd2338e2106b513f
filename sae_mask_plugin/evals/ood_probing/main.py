"""OOD probing: train probes on a task's in-distribution data, test them in distribution and out of it.

For every OOD task sae-probes ships, a dense logistic-regression "oracle" on raw activations and k-sparse
probes on SAE latents (latents ranked on the training split only) are fitted on the same class-balanced ID
training split and scored on a held-out ID split and on the task's OOD set. Splits, latent ranking and probes
are sae-probes' functions (`evals.probing`); activations come from the shared on-disk cache.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch
from sae_lens import SAE
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from sae_mask_plugin.embedded.probing_data import load_ood_task
from sae_mask_plugin.evals.activations import ActivationCache
from sae_mask_plugin.evals.common import LazyModel, encode, saebench_output_fields
from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig
from sae_mask_plugin.evals.ood_probing.eval_output import (
    OodMetricCategories,
    OodOracleMetrics,
    OodProbingEvalOutput,
    OodSaeMetrics,
    OodTaskDetail,
)
from sae_mask_plugin.evals.probing import (
    balanced_split,
    fit_probe,
    probe_scores,
    rank_latents,
    run_activation_probing_eval,
)


class TaskData:
    """Raw activations [n, d] and labels [n] of one OOD task: ID train, ID test and OOD test."""

    def __init__(self, cache: ActivationCache, task: str, config: OodProbingEvalConfig):
        in_distribution, ood = load_ood_task(task)
        y = in_distribution["target"].to_numpy()
        train, test = balanced_split(y, config.num_train, config.num_id_test, config.random_seed, task)
        ood_rows = np.arange(len(ood))
        if config.num_ood_test is not None and config.num_ood_test < len(ood):
            ood_rows = np.sort(
                np.random.RandomState(config.random_seed).choice(len(ood), config.num_ood_test, replace=False)
            )
        x_id = cache.get(task, in_distribution["prompt"].iloc[np.concatenate([train, test])].tolist())
        self.x_train, self.x_id_test = x_id[: len(train)], x_id[len(train) :]
        self.y_train, self.y_id_test = y[train], y[test]
        self.x_ood = cache.get(f"{task}_OOD", ood["prompt"].iloc[ood_rows].tolist())
        self.y_ood = ood["target"].to_numpy()[ood_rows]


def _id_ood_accuracy(
    probe, train_test_ood: tuple[torch.Tensor, torch.Tensor], data: TaskData
) -> tuple[float, float]:
    x_id_test, x_ood = train_test_ood
    return (
        probe_scores(probe, x_id_test, data.y_id_test)["test_accuracy"],
        probe_scores(probe, x_ood, data.y_ood)["test_accuracy"],
    )


def evaluate_task(data: TaskData, sae: SAE, task: str, config: OodProbingEvalConfig) -> OodTaskDetail:
    """Oracle and k-sparse SAE probes of one task."""
    seed = config.random_seed
    oracle = fit_probe(data.x_train, data.y_train, data.x_id_test, data.y_id_test, "l2", seed)
    oracle_id, oracle_ood = _id_ood_accuracy(oracle, (data.x_id_test, data.x_ood), data)
    latents_train, latents_id_test, latents_ood = (
        encode(sae, x) for x in (data.x_train, data.x_id_test, data.x_ood)
    )
    order = rank_latents(latents_train, data.y_train)
    by_k: dict[int, dict[str, float]] = {}
    for k in config.ks:
        top = order[:k]
        probe = fit_probe(
            latents_train[:, top],
            data.y_train,
            latents_id_test[:, top],
            data.y_id_test,
            config.reg_type,
            seed,
        )
        sae_id, sae_ood = _id_ood_accuracy(probe, (latents_id_test[:, top], latents_ood[:, top]), data)
        by_k[k] = {
            "sae_id_accuracy": sae_id,
            "sae_ood_accuracy": sae_ood,
            "sae_ood_gap": sae_id - sae_ood,
            "oracle_minus_sae_id_accuracy": oracle_id - sae_id,
            "oracle_minus_sae_ood_accuracy": oracle_ood - sae_ood,
            "C": float(probe.classifier.C),
        }
    return OodTaskDetail(
        task_name=task,
        num_train=len(data.y_train),
        num_id_test=len(data.y_id_test),
        num_ood_test=len(data.y_ood),
        oracle_C=float(oracle.classifier.C),
        oracle_id_accuracy=oracle_id,
        oracle_ood_accuracy=oracle_ood,
        oracle_ood_gap=oracle_id - oracle_ood,
        sae_metrics_by_k=by_k,
    )


def evaluate_sae(
    sae: SAE,
    sae_name: str,
    config: OodProbingEvalConfig,
    cache: ActivationCache,
) -> OodProbingEvalOutput:
    """OOD probing of one SAE over `config.task_names`."""
    details = [
        evaluate_task(TaskData(cache, task, config), sae, task, config)
        for task in tqdm(config.task_names, desc="OOD tasks", leave=False)
    ]
    mean_by_k = {
        k: {
            name: statistics.mean(d.sae_metrics_by_k[k][name] for d in details)
            for name in details[0].sae_metrics_by_k[k]
            if name != "C"  # a per-task regularisation strength, not a metric to average
        }
        for k in config.ks
    }
    headline = mean_by_k[config.headline_k]
    return OodProbingEvalOutput(
        eval_config=config,
        **saebench_output_fields(sae_name, sae),
        eval_result_metrics=OodMetricCategories(
            oracle=OodOracleMetrics(
                oracle_id_accuracy=statistics.mean(d.oracle_id_accuracy for d in details),
                oracle_ood_accuracy=statistics.mean(d.oracle_ood_accuracy for d in details),
                oracle_ood_gap=statistics.mean(d.oracle_ood_gap for d in details),
            ),
            sae=OodSaeMetrics(k=config.headline_k, **headline),
        ),
        eval_result_details=details,
        sae_metrics_by_k=mean_by_k,
    )


def run_eval(
    config: OodProbingEvalConfig,
    selected_saes: list[tuple[str, SAE]],
    device: str,
    output_path: str,
    force_rerun: bool = False,
    model: HookedTransformer | LazyModel | None = None,
    cache_path: str | None = None,
) -> dict[str, dict[str, Any]]:
    """SAEBench-style entry: OOD probing of each `(name, SAE)`, one JSON per SAE in `output_path`.

    `model` (a `HookedTransformer`, or a `LazyModel` loaded only if needed) defaults to `config.model_name`
    loaded offline-aware; activations are cached under `cache_path`
    (default `<output_path>/cache`).
    """
    return run_activation_probing_eval(
        config,
        selected_saes,
        device,
        output_path,
        force_rerun,
        model,
        cache_path,
        "OOD probing",
        evaluate_sae,
    )
