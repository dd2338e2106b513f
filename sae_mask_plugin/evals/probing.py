"""Probe fitting shared by the sparse-probing and OOD evals, built on sae-probes' own functions.

- `balanced_split`: sae-probes' class-balanced train/test split (`get_train_test_indices`).
- `fit_probe`: sae-probes' `find_best_reg` (logistic regression, strength chosen on one validation split of the
  training data), as SAEBench's sparse probing fits it.
- `fit_probe_cv`: logistic regression with the strength chosen by stratified k-fold cross-validation on the
  training data (scikit-learn's `LogisticRegressionCV`, sae-probes' grid of strengths), for the OOD eval.
- `rank_latents`: sae-probes' latent ranking by normalised class-mean difference on the training data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sae_probes.run_sae_evals import get_sorted_indices, mean_act_normalization
from sae_probes.utils_data import get_train_test_indices
from sae_probes.utils_training import BestClassifierResults, find_best_reg
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from sae_mask_plugin.evals.activations import ActivationCache
from sae_mask_plugin.evals.common import EvalInputError, LazyModel


def single_threaded_blas():
    """Probes are small (hundreds of rows): threaded BLAS only adds synchronisation, which on a busy machine
    made one scikit-learn fit 10-50x slower (measured). Results do not change."""
    return threadpool_limits(limits=1, user_api="blas")


def balanced_split(
    y: np.ndarray, num_train: int, num_test: int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint class-balanced (train, test) row indices of labels `y` [n] in {0, 1}."""
    per_class = np.bincount(y.astype(int), minlength=2)
    needed = (num_train + num_test + 1) // 2 + 1
    if per_class.min() < needed:
        raise EvalInputError(
            f"{what}: {num_train} training + {num_test} test examples need about {needed} of each class, "
            f"but it has {per_class.tolist()}"
        )
    return get_train_test_indices(y, num_train, num_test, pos_ratio=0.5, seed=seed)


def fit_probe(
    x_train: torch.Tensor,
    y_train: np.ndarray,
    x_test: torch.Tensor,
    y_test: np.ndarray,
    penalty: str,
    seed: int,
) -> BestClassifierResults:
    """sae-probes' logistic-regression probe on features [n, d] with labels [n]; metrics on the test set."""
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # sae-probes passes `penalty=`, which newer scikit-learn deprecates (one warning per fit)
        warnings.filterwarnings("ignore", message="Inconsistent values: penalty=", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*'penalty' was deprecated", category=FutureWarning)
        return find_best_reg(
            x_train.numpy(), y_train, x_test.numpy(), y_test, parallel=False, penalty=penalty, seed=seed
        )


PROBE_STRENGTHS = np.logspace(-5, 5, 10)
"""sae-probes' `find_best_reg` grid of inverse regularisation strengths C, ascending."""
PROBE_MAX_ITER = 1000
"""Solver iterations of every logistic-regression probe (sae-probes' `find_best_reg` setting)."""


def fit_probe_cv(
    x_train: torch.Tensor, y_train: np.ndarray, penalty: str, cv_folds: int, seed: int
) -> LogisticRegressionCV:
    """Logistic regression on features [n, d] with labels [n] in {0, 1}, refitted on all of them at the C of
    `PROBE_STRENGTHS` with the best mean held-out log-loss over `cv_folds` stratified folds (seeded by `seed`).

    Log-loss, a proper score, ranks strengths where AUC ties (any C keeps a 1-latent probe's ranking) and where
    accuracy on a small fold barely moves. The chosen strength is the fitted probe's `C_`."""
    probe = LogisticRegressionCV(
        Cs=PROBE_STRENGTHS,
        l1_ratios=(1.0 if penalty == "l1" else 0.0,),
        cv=StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed),
        scoring="neg_log_loss",
        solver="liblinear" if penalty == "l1" else "lbfgs",
        max_iter=PROBE_MAX_ITER,
        random_state=seed,
        use_legacy_attributes=False,
    )
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return probe.fit(x_train.numpy(), y_train)


def probe_scores(probe: BestClassifierResults, x: torch.Tensor, y: np.ndarray) -> dict[str, float]:
    """Accuracy, AUC and (weighted) F1 of a fitted probe on features [n, d], as sae-probes computes them."""
    features = x.numpy()
    predicted = probe.classifier.predict(features)
    scores = {
        "test_accuracy": float(accuracy_score(y, predicted)),
        "test_f1": float(f1_score(y, predicted, average="weighted")),
    }
    if len(np.unique(y)) == 2:
        scores["test_auc"] = float(roc_auc_score(y, probe.classifier.predict_proba(features)[:, 1]))
    return scores


def rank_latents(latents_train: torch.Tensor, y_train: np.ndarray) -> torch.Tensor:
    """Latent indices [d_sae] ordered by |normalised class-mean difference| on training latents [n, d_sae]."""
    return get_sorted_indices(latents_train, torch.from_numpy(y_train), mean_act_normalization)


def on_cached_activations(
    config: Any, evaluate_sae: Callable[[Any, str, Any, ActivationCache], Any]
) -> Callable[[str, Any, LazyModel, Path], Any]:
    """The probing evals' per-SAE step for `run_each_sae`: `evaluate_sae(sae, name, config, cache)` on LLM
    activations at the SAE's hook, cached under the cache root (the model loads only when one is missing)."""

    def evaluate(sae_name: str, sae: Any, model: LazyModel, cache_root: Path) -> Any:
        cache = ActivationCache(
            cache_root,
            config.model_name,
            sae.cfg.metadata.hook_name,
            config.max_seq_len,
            config.llm_batch_size,
            model.get,
            llm_dtype=config.llm_dtype,
        )
        return evaluate_sae(sae, sae_name, config, cache)

    return evaluate
