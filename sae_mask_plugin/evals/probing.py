"""Probe fitting shared by the sparse-probing and OOD evals, built on sae-probes' own functions.

- `balanced_split`: sae-probes' class-balanced train/test split (`get_train_test_indices`).
- `fit_probe`: sae-probes' `find_best_reg` (logistic regression, strength chosen on a validation split of the
  training data).
- `rank_latents`: sae-probes' latent ranking by normalised class-mean difference on the training data.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sae_probes.run_sae_evals import get_sorted_indices, mean_act_normalization
from sae_probes.utils_data import get_train_test_indices
from sae_probes.utils_training import BestClassifierResults, find_best_reg
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from sae_mask_plugin.evals.common import EvalInputError


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return find_best_reg(
            x_train.numpy(), y_train, x_test.numpy(), y_test, parallel=False, penalty=penalty, seed=seed
        )


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
