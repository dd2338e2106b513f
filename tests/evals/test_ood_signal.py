"""The OOD eval's signal filter, splits and probe strengths on synthetic activations (no LLM)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from sae_mask_plugin.embedded.probing_data import load_ood_task
from sae_mask_plugin.evals.common import settings_key
from sae_mask_plugin.evals.ood_probing import main as ood_main
from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig
from sae_mask_plugin.evals.ood_probing.main import TaskData, evaluate_sae, ood_signal
from sae_mask_plugin.evals.probing import PROBE_MAX_ITER, PROBE_STRENGTHS, fit_probe_cv, single_threaded_blas

D_IN = 8
SIGNAL_TASK, NO_SIGNAL_TASK, INVALID_TASK = "6_hist_fig_isamerican", "66_living-room", "90_glue_qnli"
CONFIG = OodProbingEvalConfig(
    model_name="synthetic",
    task_names=[SIGNAL_TASK, NO_SIGNAL_TASK, INVALID_TASK],
    num_train=64,
    num_id_test=32,
    ks=[1, 2],
    headline_k=2,
    cv_folds=3,
)


class SyntheticCache:
    """Stands in for `ActivationCache`: activations [n, D_IN] whose first direction carries the label in
    distribution; out of distribution it does so too, except for NO_SIGNAL_TASK, whose OOD texts all sit far on
    the negative side (so every probe calls them negative). Records the texts it is asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.labels: dict[str, int] = {}
        for task in CONFIG.task_names:
            for frame in load_ood_task(task):
                self.labels |= dict(zip(frame["prompt"], frame["target"], strict=True))
        self.requests: dict[str, list[str]] = {}

    def path(self, dataset: str, texts: Sequence[str]) -> Path:
        return self.root / f"{dataset}-{settings_key({'texts': list(texts)})}.pt"

    def get(self, dataset: str, texts: Sequence[str]) -> torch.Tensor:
        self.requests[dataset] = list(texts)
        generator = torch.Generator().manual_seed(len(self.requests))
        x = torch.randn(len(texts), D_IN, generator=generator)
        y = torch.tensor([self.labels[text] for text in texts], dtype=torch.float32)
        x[:, 0] += 3.0 * (y - 0.5)
        if dataset == f"{NO_SIGNAL_TASK}_OOD":
            x[:, 0] -= 20.0
        return x


def _tiny_sae(seed: int = 0) -> StandardSAE:
    torch.manual_seed(seed)
    return StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=16))


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    cache = SyntheticCache(tmp_path_factory.mktemp("synthetic"))
    return cache, evaluate_sae(_tiny_sae(), "synthetic", CONFIG, cache)  # type: ignore[arg-type]


def test_ood_signal_tests_accuracy_against_the_majority_rate():
    labels = np.array([0] * 180 + [1] * 120)  # majority rate 0.6
    at_majority = ood_signal(0.6, labels, alpha=0.05)
    assert at_majority.majority_rate == pytest.approx(0.6)
    assert at_majority.p_value > 0.4 and not at_majority.has_signal
    above = ood_signal(0.7, labels, alpha=0.05)
    assert above.p_value < 1e-3 and above.has_signal
    assert above.ci_low < 0.7 < above.ci_high
    assert not ood_signal(0.65, labels, alpha=0.01).has_signal  # p ≈ 0.04: alpha decides


def test_headline_keeps_only_valid_tasks_with_oracle_signal(synthetic_run):
    _, output = synthetic_run
    details = {d.task_name: d for d in output.eval_result_details}
    assert output.headline_tasks == [SIGNAL_TASK]
    assert details[SIGNAL_TASK].has_ood_signal and details[SIGNAL_TASK].oracle_ood_accuracy > 0.8
    no_signal = details[NO_SIGNAL_TASK]
    assert not no_signal.has_ood_signal and not no_signal.in_headline
    assert no_signal.oracle_ood_accuracy == pytest.approx(no_signal.ood_majority_rate)
    assert output.excluded_tasks[NO_SIGNAL_TASK].startswith("no OOD signal: oracle OOD acc")
    assert details[INVALID_TASK].has_ood_signal  # signal in the synthetic data, yet flagged invalid
    assert details[INVALID_TASK].invalid_reason and not details[INVALID_TASK].in_headline
    assert output.excluded_tasks[INVALID_TASK].startswith("invalid: ")
    for detail in details.values():
        assert detail.num_split_seeds == len(CONFIG.split_seeds) == len(detail.oracle_C_by_seed)
        assert detail.oracle_ood_accuracy == pytest.approx(np.mean(detail.oracle_ood_accuracy_by_seed))
        assert (
            detail.oracle_ood_accuracy_ci_low
            <= detail.oracle_ood_accuracy
            <= detail.oracle_ood_accuracy_ci_high
        )
        assert 0.0 <= detail.oracle_ood_auc <= 1.0


def test_json_carries_headline_and_all_task_means(synthetic_run):
    _, output = synthetic_run
    data = json.loads(output.to_json())  # strict JSON: NaN would not parse back as a number
    metrics = data["eval_result_metrics"]
    (signal,) = [d for d in data["eval_result_details"] if d["task_name"] == SIGNAL_TASK]
    k = str(CONFIG.headline_k)
    assert metrics["oracle"]["oracle_ood_accuracy"] == pytest.approx(signal["oracle_ood_accuracy"])
    assert metrics["sae"]["sae_ood_accuracy"] == pytest.approx(
        signal["sae_metrics_by_k"][k]["sae_ood_accuracy"]
    )
    all_tasks = metrics["all_tasks"]
    details = data["eval_result_details"]
    assert all_tasks["oracle_ood_accuracy_all_tasks"] == pytest.approx(
        np.mean([d["oracle_ood_accuracy"] for d in details])
    )
    assert all_tasks["sae_ood_gap_all_tasks"] == pytest.approx(
        np.mean([d["sae_metrics_by_k"][k]["sae_ood_gap"] for d in details])
    )
    flat_keys = [key for category in metrics.values() for key in category]
    assert len(flat_keys) == len(set(flat_keys))
    assert data["headline_tasks"] == [SIGNAL_TASK]
    assert set(data["excluded_tasks"]) == {NO_SIGNAL_TASK, INVALID_TASK}


def test_the_oracle_is_fitted_once_per_model_and_hook_not_per_sae(synthetic_run, monkeypatch):
    cache, first = synthetic_run

    def refuse(*args, **kwargs):
        raise AssertionError("the oracle was refitted although it is cached")

    monkeypatch.setattr(ood_main, "fit_oracle", refuse)
    second = evaluate_sae(_tiny_sae(seed=1), "other", CONFIG, cache)  # type: ignore[arg-type]
    assert second.eval_result_details[0].oracle_ood_accuracy_by_seed == (
        first.eval_result_details[0].oracle_ood_accuracy_by_seed
    )
    assert second.headline_tasks == first.headline_tasks


def test_no_headline_task_gives_none_not_nan(tmp_path):
    cache = SyntheticCache(tmp_path)
    config = OodProbingEvalConfig(
        model_name="synthetic",
        task_names=[NO_SIGNAL_TASK],
        num_train=64,
        num_id_test=32,
        ks=[1],
        headline_k=1,
    )
    output = evaluate_sae(_tiny_sae(), "s", config, cache)  # type: ignore[arg-type]
    metrics = json.loads(output.to_json())["eval_result_metrics"]
    assert metrics["oracle"]["oracle_ood_accuracy"] is None and metrics["sae"]["sae_ood_accuracy"] is None
    assert metrics["sae"]["k"] == 1
    assert isinstance(metrics["all_tasks"]["oracle_ood_accuracy_all_tasks"], float)


def test_texts_are_distinct_and_no_id_test_text_is_a_training_text(tmp_path):
    cache = SyntheticCache(tmp_path)
    data = TaskData(cache, SIGNAL_TASK, CONFIG)  # type: ignore[arg-type]
    pool_texts = cache.requests[SIGNAL_TASK]
    assert len(set(pool_texts)) == len(pool_texts) == CONFIG.num_train + CONFIG.num_id_test
    splits = [data.split(CONFIG, seed) for seed in CONFIG.split_seeds]
    for train, test in splits:
        assert not {pool_texts[i] for i in train} & {pool_texts[i] for i in test}
        assert abs(data.y_pool[train].mean() - 0.5) < 0.05 and abs(data.y_pool[test].mean() - 0.5) < 0.05
    assert not all(np.array_equal(splits[0][0], train) for train, _ in splits[1:])


def test_probe_strength_is_chosen_by_k_fold_log_loss():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    noise = torch.from_numpy(rng.normal(size=(120, 40)))
    informative = noise.clone()
    informative[:, 0] += torch.from_numpy(4.0 * (y - 0.5))
    for features, strong in ((noise, True), (informative, False)):
        probe = fit_probe_cv(features, y, "l2", cv_folds=4, seed=0)
        folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
        with single_threaded_blas():
            by_hand = [
                cross_val_score(
                    LogisticRegression(C=c, max_iter=PROBE_MAX_ITER),
                    features.numpy(),
                    y,
                    cv=folds,
                    scoring="neg_log_loss",
                ).mean()
                for c in PROBE_STRENGTHS
            ]
        assert pytest.approx(PROBE_STRENGTHS[int(np.argmax(by_hand))], rel=1e-6) == probe.C_
        assert (probe.C_ <= 1e-2) == strong  # pure noise: the strongest penalties win


@pytest.mark.parametrize(
    "change, message",
    [
        ({"split_seeds": []}, "split_seeds"),
        ({"split_seeds": [1, 1]}, "split_seeds"),
        ({"cv_folds": 1}, "cv_folds"),
        ({"num_train": 6}, "num_train"),
        ({"headline_k": 3}, "headline_k"),
        ({"signal_alpha": 0.0}, "signal_alpha"),
        ({"reg_type": "l3"}, "reg_type"),
    ],
)
def test_bad_config_fails_early(change, message):
    with pytest.raises(ValueError, match=message):
        OodProbingEvalConfig(model_name="m", **change)
