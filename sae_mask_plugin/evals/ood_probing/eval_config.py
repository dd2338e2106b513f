"""Configuration of the OOD-probing eval: probes trained in distribution, tested in and out of distribution."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from sae_mask_plugin.embedded.probing_data import OOD_TASKS
from sae_mask_plugin.evals.probing_config import ActivationProbingEvalConfig


@dataclass
class OodProbingEvalConfig(ActivationProbingEvalConfig):
    split_seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        title="Split Seeds",
        description="Each seed splits the in-distribution pool anew into class-balanced training and ID-test "
        "texts (stratified) and seeds the probes' cross-validation folds; every metric is the mean over seeds.",
    )
    task_names: list[str] = Field(
        default_factory=lambda: list(OOD_TASKS),
        title="OOD Tasks",
        description="OOD tasks: sae-probes' eight plus ours (embedded.probing_data.OOD_SHIFTS says what each "
        "shift is). Texts are deduplicated before splitting; texts carrying both labels are dropped.",
    )
    num_id_test: int = Field(
        default=500,
        title="ID Test Examples",
        description="Held-out in-distribution test examples per task (class-balanced, no text shared with "
        "training).",
    )
    num_ood_test: int | None = Field(
        default=None,
        title="OOD Test Examples",
        description="OOD test examples per task; None: the whole deduplicated OOD set (about 300 texts).",
    )
    headline_k: int = Field(
        default=16,
        title="Headline K",
        description="The k whose SAE metrics fill the flat `sae` metrics (every k is in `sae_metrics_by_k`).",
    )
    cv_folds: int = Field(
        default=5,
        title="Cross-Validation Folds",
        description="Every probe's strength C is chosen from sae-probes' grid (1e-5 .. 1e5) by the best mean "
        "held-out log-loss over this many stratified folds of its training split, then refitted on all of it.",
    )
    signal_alpha: float = Field(
        default=0.05,
        title="Signal Significance Level",
        description="A task has OOD signal when the one-sided exact binomial test of the oracle's OOD accuracy "
        "(mean over split seeds, as a count of the OOD texts) against the OOD set's majority-class rate gives "
        "p < signal_alpha. Decided on the oracle (dense probe on raw activations) so every SAE at one model and "
        "hook is summarised over the same tasks. The test is on accuracy, the metric the headline averages: a "
        "shift that keeps the OOD texts ranked (high OOD AUC) but moves them all to one side of the ID-fitted "
        "threshold leaves every probe at the majority rate, and accuracy differences there are noise. "
        "The OOD AUC is reported beside it.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.split_seeds or len(set(self.split_seeds)) != len(self.split_seeds):
            raise ValueError(f"split_seeds must be distinct and at least one, got {self.split_seeds}")
        if self.cv_folds < 2:
            raise ValueError(f"cv_folds must be at least 2, got {self.cv_folds}")
        if self.num_train < 2 * self.cv_folds:
            raise ValueError(
                f"num_train ({self.num_train}) must be at least 2 * cv_folds ({2 * self.cv_folds})"
            )
        if self.num_id_test < 2:
            raise ValueError(f"num_id_test must be at least 2 (one of each class), got {self.num_id_test}")
        if self.num_ood_test is not None and self.num_ood_test < 1:
            raise ValueError(f"num_ood_test must be positive or None, got {self.num_ood_test}")
        if self.headline_k not in self.ks:
            raise ValueError(f"headline_k {self.headline_k} is not one of ks {self.ks}")
        if not 0.0 < self.signal_alpha < 1.0:
            raise ValueError(f"signal_alpha must be in (0, 1), got {self.signal_alpha}")


def cpu_preset(model_name: str) -> OodProbingEvalConfig:
    """The CPU preset: every OOD task, 256 training and 128 ID-test texts, the whole OOD set, 128 tokens."""
    return OodProbingEvalConfig(model_name=model_name, num_train=256, num_id_test=128, max_seq_len=128)
