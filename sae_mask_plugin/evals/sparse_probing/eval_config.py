"""Configuration of the sparse-probing eval on sae-probes' datasets (offline)."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from sae_mask_plugin.embedded.probing_data import SPARSE_PROBING_DATASETS
from sae_mask_plugin.evals.probing_config import ActivationProbingEvalConfig


@dataclass
class SparseProbingEvalConfig(ActivationProbingEvalConfig):
    random_seed: int = Field(
        default=42,
        title="Random Seed",
        description="Seed of the balanced train/test split and of the probes.",
    )
    dataset_names: list[str] = Field(
        default_factory=lambda: list(SPARSE_PROBING_DATASETS),
        title="Dataset Names",
        description="sae-probes binary datasets to probe; by default the held-out ones kept out of the "
        "embedded training corpus.",
    )
    num_train: int = Field(
        default=1024,
        title="Training Examples",
        description="Training examples per dataset (class-balanced, as sae-probes' normal setting).",
    )
    num_test: int = Field(
        default=1000,
        title="Test Examples",
        description="Test examples per dataset (class-balanced, disjoint from training).",
    )
    ks: list[int] = Field(
        default_factory=lambda: [1, 2, 5, 16],
        title="K Values",
        description="Numbers of SAE latents the k-sparse probes may use; latents ranked by the normalised "
        "class-mean difference on the training split (sae-probes).",
    )
    reg_type: str = Field(
        default="l1",
        title="Regularization Type",
        description="Penalty of the k-sparse probes ('l1' or 'l2'); the dense baseline uses 'l2'. The strength "
        "is chosen on a validation split of the training data (sae-probes' find_best_reg).",
    )


def cpu_preset(model_name: str) -> SparseProbingEvalConfig:
    """The CPU preset: the four shortest default datasets, 256 training and 200 test texts each,
    truncated to 128 tokens."""
    return SparseProbingEvalConfig(
        model_name=model_name,
        dataset_names=["113_movie_sent", "36_sciq_tf", "96_spam_is", "161_agnews_0"],
        num_train=256,
        num_test=200,
        max_seq_len=128,
    )
