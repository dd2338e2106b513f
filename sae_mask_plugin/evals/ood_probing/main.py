"""OOD probing: train probes on a task's in-distribution data, test them in distribution and out of it.

For every OOD task (`embedded.probing_data.OOD_TASKS`, texts deduplicated), a dense logistic-regression "oracle"
on raw activations and k-sparse probes on SAE latents (latents ranked on the training split only) are fitted on
the same class-balanced ID training split and scored on a held-out ID split and on the task's OOD set; each probe's
strength is chosen by k-fold cross-validation on its training split, and every metric is averaged over
`split_seeds`, which re-split one class-balanced ID pool (so activations are computed once per task).

The headline averages only the tasks where the eval can discriminate: valid tasks (not in `INVALID_OOD_TASKS`)
whose oracle beats the OOD set's majority-class rate (one-sided exact binomial test, `signal_alpha`). The oracle
does not depend on the SAE, so every SAE at one model and hook is summarised over the same tasks; the means over
every task are kept under `all_tasks`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch
from sae_lens import SAE
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from sae_mask_plugin.embedded.probing_data import INVALID_OOD_TASKS, OOD_SHIFTS, load_ood_task
from sae_mask_plugin.evals.activations import ActivationCache
from sae_mask_plugin.evals.common import (
    LazyModel,
    encode,
    is_complete_result,
    path_safe,
    run_each_sae,
    saebench_output_fields,
    settings_key,
)
from sae_mask_plugin.evals.means import mean_of_present
from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig
from sae_mask_plugin.evals.ood_probing.eval_output import (
    ALL_TASKS_SUFFIX,
    ORACLE_METRICS,
    SAE_METRICS,
    OodAllTasksMetrics,
    OodMetricCategories,
    OodOracleMetrics,
    OodProbingEvalOutput,
    OodSaeMetrics,
    OodTaskDetail,
)
from sae_mask_plugin.evals.probing import (
    balanced_split,
    fit_probe_cv,
    on_cached_activations,
    rank_latents,
)
from sae_mask_plugin.files import build_lock, write_text_atomic


class TaskData:
    """Raw activations and labels of one OOD task: a class-balanced pool of distinct ID texts (x_pool
    [num_train + num_id_test, d], y_pool) and the OOD set (x_ood [n_ood, d], y_ood); `key` identifies them."""

    def __init__(self, cache: ActivationCache, task: str, config: OodProbingEvalConfig):
        in_distribution, ood = load_ood_task(task)
        y = in_distribution["target"].to_numpy()
        train, test = balanced_split(y, config.num_train, config.num_id_test, config.random_seed, task)
        pool = np.concatenate([train, test])
        ood_rows = np.arange(len(ood))
        if config.num_ood_test is not None and config.num_ood_test < len(ood):
            ood_rows = np.sort(
                np.random.RandomState(config.random_seed).choice(len(ood), config.num_ood_test, replace=False)
            )
        pool_texts, ood_texts = (
            in_distribution["prompt"].iloc[pool].tolist(),
            ood["prompt"].iloc[ood_rows].tolist(),
        )
        self.x_pool, self.y_pool = cache.get(task, pool_texts), y[pool]
        self.x_ood, self.y_ood = cache.get(f"{task}_OOD", ood_texts), ood["target"].to_numpy()[ood_rows]
        self.key = {
            "task": task,
            "activations": [cache.path(task, pool_texts).name, cache.path(f"{task}_OOD", ood_texts).name],
            "labels": [self.y_pool.tolist(), self.y_ood.tolist()],
        }

    def split(self, config: OodProbingEvalConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, ID test) rows of the pool for split `seed`: stratified, so class-balanced like the pool."""
        return train_test_split(
            np.arange(len(self.y_pool)),
            train_size=config.num_train,
            test_size=config.num_id_test,
            stratify=self.y_pool,
            random_state=seed,
        )


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one split seed: accuracies, OOD AUC and the chosen inverse strength C."""

    id_accuracy: float
    ood_accuracy: float
    ood_auc: float
    C: float


def _fit_and_score(
    features: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    labels: tuple[np.ndarray, np.ndarray, np.ndarray],
    penalty: str,
    config: OodProbingEvalConfig,
    seed: int,
) -> ProbeResult:
    """Fit on (train) and score on (ID test, OOD) features [n, d] with labels [n]."""
    (x_train, x_id, x_ood), (y_train, y_id, y_ood) = features, labels
    probe = fit_probe_cv(x_train, y_train, penalty, config.cv_folds, seed)
    return ProbeResult(
        id_accuracy=float(accuracy_score(y_id, probe.predict(x_id.numpy()))),
        ood_accuracy=float(accuracy_score(y_ood, probe.predict(x_ood.numpy()))),
        ood_auc=float(roc_auc_score(y_ood, probe.predict_proba(x_ood.numpy())[:, 1])),
        C=float(probe.C_),
    )


def fit_oracle(data: TaskData, config: OodProbingEvalConfig) -> list[ProbeResult]:
    """The dense L2 oracle on raw activations, one result per split seed."""
    results = []
    for seed in config.split_seeds:
        train, test = data.split(config, seed)
        features = (data.x_pool[train], data.x_pool[test], data.x_ood)
        labels = (data.y_pool[train], data.y_pool[test], data.y_ood)
        results.append(_fit_and_score(features, labels, "l2", config, seed))
    return results


ORACLE_FORMAT_VERSION = 1


def cached_oracle(data: TaskData, config: OodProbingEvalConfig, root: Path) -> list[ProbeResult]:
    """`fit_oracle`'s results, stored as JSON under the activation cache folder `root`: the oracle does not
    depend on the SAE, so every SAE after the first at one model and hook reuses it."""
    key = settings_key(
        {
            "format": ORACLE_FORMAT_VERSION,
            "data": data.key,
            "settings": [config.split_seeds, config.num_train, config.num_id_test, config.cv_folds],
            "sklearn": sklearn.__version__,
        }
    )
    path = root / "ood_oracle" / f"{path_safe(data.key['task'])}-{key}.json"
    if not is_complete_result(path):
        with build_lock(
            path
        ):  # processes needing the same oracle take turns: the first fits, the others load
            if not is_complete_result(path):
                results = fit_oracle(data, config)
                write_text_atomic(
                    path, json.dumps({"task": data.key["task"], "results": [asdict(r) for r in results]})
                )
                return results
    return [ProbeResult(**result) for result in json.loads(path.read_text())["results"]]


def fit_sae_probes(data: TaskData, sae: SAE, config: OodProbingEvalConfig) -> dict[int, list[ProbeResult]]:
    """k -> the k-sparse probe on SAE latents for each split seed (latents ranked on that seed's training split)."""
    latents_pool, latents_ood = encode(sae, data.x_pool), encode(sae, data.x_ood)
    by_k: dict[int, list[ProbeResult]] = {k: [] for k in config.ks}
    for seed in config.split_seeds:
        train, test = data.split(config, seed)
        order = rank_latents(latents_pool[train], data.y_pool[train])
        for k in config.ks:
            top = order[:k]
            features = (latents_pool[train][:, top], latents_pool[test][:, top], latents_ood[:, top])
            labels = (data.y_pool[train], data.y_pool[test], data.y_ood)
            by_k[k].append(_fit_and_score(features, labels, config.reg_type, config, seed))
    return by_k


@dataclass(frozen=True)
class OodSignal:
    """Whether the oracle's OOD accuracy beats guessing the majority class, on `n` OOD texts."""

    majority_rate: float
    p_value: float
    ci_low: float
    ci_high: float
    has_signal: bool


def ood_signal(ood_accuracy: float, y_ood: np.ndarray, alpha: float) -> OodSignal:
    """One-sided exact binomial test of an OOD accuracy (as a count of the len(y_ood) texts) against the
    majority-class rate of labels `y_ood` [n], with its Clopper-Pearson 95% interval."""
    n = len(y_ood)
    majority_rate = float(max(y_ood.mean(), 1.0 - y_ood.mean()))
    test = binomtest(round(ood_accuracy * n), n, majority_rate, alternative="greater")
    interval = binomtest(round(ood_accuracy * n), n).proportion_ci(0.95, method="exact")
    return OodSignal(
        majority_rate, float(test.pvalue), interval.low, interval.high, bool(test.pvalue < alpha)
    )


def evaluate_task(
    data: TaskData, sae: SAE, task: str, config: OodProbingEvalConfig, cache_root: Path
) -> OodTaskDetail:
    """Oracle (cached under `cache_root`) and k-sparse SAE probes of one task, means over split seeds, with the
    oracle's OOD signal test."""
    oracle = cached_oracle(data, config, cache_root)
    oracle_id = statistics.mean(r.id_accuracy for r in oracle)
    oracle_ood = statistics.mean(r.ood_accuracy for r in oracle)
    signal = ood_signal(oracle_ood, data.y_ood, config.signal_alpha)
    sae_probes = fit_sae_probes(data, sae, config)
    invalid_reason = INVALID_OOD_TASKS.get(task)
    return OodTaskDetail(
        task_name=task,
        ood_shift=OOD_SHIFTS[task],
        num_split_seeds=len(config.split_seeds),
        num_train=config.num_train,
        num_id_test=config.num_id_test,
        num_ood_test=len(data.y_ood),
        ood_majority_rate=signal.majority_rate,
        oracle_id_accuracy=oracle_id,
        oracle_ood_accuracy=oracle_ood,
        oracle_ood_gap=oracle_id - oracle_ood,
        oracle_ood_accuracy_by_seed=[r.ood_accuracy for r in oracle],
        oracle_ood_auc=statistics.mean(r.ood_auc for r in oracle),
        oracle_ood_p_value=signal.p_value,
        oracle_ood_accuracy_ci_low=signal.ci_low,
        oracle_ood_accuracy_ci_high=signal.ci_high,
        has_ood_signal=signal.has_signal,
        invalid_reason=invalid_reason,
        in_headline=signal.has_signal and invalid_reason is None,
        oracle_C_by_seed=[r.C for r in oracle],
        sae_metrics_by_k={
            k: _sae_metrics(results, oracle_id, oracle_ood) for k, results in sae_probes.items()
        },
        sae_C_by_k={k: [r.C for r in results] for k, results in sae_probes.items()},
    )


def _sae_metrics(results: list[ProbeResult], oracle_id: float, oracle_ood: float) -> dict[str, float]:
    """The per-task SAE metrics of one k: means over split seeds, and their differences from the oracle's."""
    sae_id = statistics.mean(r.id_accuracy for r in results)
    sae_ood = statistics.mean(r.ood_accuracy for r in results)
    return {
        "sae_id_accuracy": sae_id,
        "sae_ood_accuracy": sae_ood,
        "sae_ood_gap": sae_id - sae_ood,
        "oracle_minus_sae_id_accuracy": oracle_id - sae_id,
        "oracle_minus_sae_ood_accuracy": oracle_ood - sae_ood,
        "sae_ood_auc": statistics.mean(r.ood_auc for r in results),
    }


def exclusion_reason(detail: OodTaskDetail) -> str | None:
    """Why a task stays out of the headline (None: it is in)."""
    if detail.invalid_reason is not None:
        return f"invalid: {detail.invalid_reason}"
    if not detail.has_ood_signal:
        return (
            f"no OOD signal: oracle OOD acc {detail.oracle_ood_accuracy:.3f} vs majority "
            f"{detail.ood_majority_rate:.3f}, binomial p = {detail.oracle_ood_p_value:.2g}"
        )
    return None


def _task_means(details: list[OodTaskDetail], k: int) -> dict[str, float | None]:
    """Means over `details` of the oracle metrics and of the SAE metrics at `k` (None for no tasks)."""
    oracle = {name: mean_of_present(getattr(d, name) for d in details) for name, *_ in ORACLE_METRICS}
    sae = {name: mean_of_present(d.sae_metrics_by_k[k][name] for d in details) for name, *_ in SAE_METRICS}
    return oracle | sae


def evaluate_sae(
    sae: SAE,
    sae_name: str,
    config: OodProbingEvalConfig,
    cache: ActivationCache,
) -> OodProbingEvalOutput:
    """OOD probing of one SAE over `config.task_names`; the headline averages the tasks with oracle OOD signal."""
    details = [
        evaluate_task(TaskData(cache, task, config), sae, task, config, cache.root)
        for task in tqdm(config.task_names, desc="OOD tasks", leave=False)
    ]
    headline = [d for d in details if d.in_headline]
    by_k_names = list(details[0].sae_metrics_by_k[config.ks[0]])
    mean_by_k = {
        k: {name: mean_of_present(d.sae_metrics_by_k[k][name] for d in headline) for name in by_k_names}
        for k in config.ks
    }
    mean_by_k_all = {
        k: {name: statistics.mean(d.sae_metrics_by_k[k][name] for d in details) for name in by_k_names}
        for k in config.ks
    }
    means = _task_means(headline, config.headline_k)
    means_all = _task_means(details, config.headline_k)
    return OodProbingEvalOutput(
        eval_config=config,
        **saebench_output_fields(sae_name, sae),
        eval_result_metrics=OodMetricCategories(
            oracle=OodOracleMetrics(**{name: means[name] for name, *_ in ORACLE_METRICS}),
            sae=OodSaeMetrics(k=config.headline_k, **{name: means[name] for name, *_ in SAE_METRICS}),
            all_tasks=OodAllTasksMetrics(
                **{name + ALL_TASKS_SUFFIX: value for name, value in means_all.items()}
            ),
        ),
        eval_result_details=details,
        headline_tasks=[d.task_name for d in headline],
        excluded_tasks={d.task_name: reason for d in details if (reason := exclusion_reason(d)) is not None},
        sae_metrics_by_k=mean_by_k,
        sae_metrics_by_k_all_tasks=mean_by_k_all,
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
    """SAEBench-style entry: OOD probing of each `(name, SAE)`, one JSON per SAE in `output_path`; `model` and
    `cache_path` (LLM activations and the oracles) as in `evals.common.run_each_sae`."""
    evaluate = on_cached_activations(config, evaluate_sae)
    return run_each_sae(
        config, selected_saes, device, output_path, force_rerun, model, cache_path, "OOD probing", evaluate
    )
