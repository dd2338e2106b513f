"""Configuration of the sparse-probing eval on sae-probes' datasets (offline)."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from sae_mask_plugin.embedded.probing_data import SPARSE_PROBING_DATASETS
from sae_mask_plugin.evals.probing_config import ActivationProbingEvalConfig


@dataclass
class SparseProbingEvalConfig(ActivationProbingEvalConfig):
    dataset_names: list[str] = Field(
        default_factory=lambda: list(SPARSE_PROBING_DATASETS),
        title="Dataset Names",
        description="sae-probes binary datasets to probe; by default the held-out ones kept out of the "
        "embedded training corpus. Each probe's strength is chosen on a validation split of its training data "
        "(sae-probes' find_best_reg).",
    )
    num_test: int = Field(
        default=1000,
        title="Test Examples",
        description="Test examples per dataset (class-balanced, disjoint from training).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dataset_names:
            raise ValueError("dataset_names must name at least one dataset")
        if self.num_test < 2:
            raise ValueError(f"num_test must be at least 2 (one of each class), got {self.num_test}")


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
