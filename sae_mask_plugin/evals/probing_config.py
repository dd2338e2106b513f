"""Config fields shared by the sparse-probing and OOD-probing evals, declared and checked once: the model, how
activations are computed, and how the k-sparse probes are trained."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.base_eval_output import BaseEvalConfig

from sae_mask_plugin.llm_dtype import LLM_DTYPES

PROBE_PENALTIES = ("l1", "l2")


@dataclass
class ActivationProbingEvalConfig(BaseEvalConfig):
    model_name: str = Field(
        default="",
        title="Model Name",
        description="TransformerLens model name (the embedded default or a hub model).",
    )
    max_seq_len: int = Field(
        default=1024,
        title="Max Sequence Length",
        description="Texts longer than this many tokens keep their last tokens (the probed position).",
    )
    llm_batch_size: int = Field(
        default=32,
        title="LLM Batch Size",
        description="Texts per forward pass when computing activations.",
    )
    llm_dtype: str = Field(
        default="float32",
        title="LLM Data Type",
        description="LLM data type.",
    )
    random_seed: int = Field(
        default=42,
        title="Random Seed",
        description="Seed of the class-balanced sample of texts whose activations are computed (sparse probing: "
        "its train/test split and the probes; OOD: the in-distribution pool and the OOD sample when "
        "num_ood_test is set).",
    )
    num_train: int = Field(
        default=1024,
        title="Training Examples",
        description="Training examples per dataset or task (class-balanced, as sae-probes' normal setting).",
    )
    ks: list[int] = Field(
        default_factory=lambda: [1, 2, 5, 16],
        title="K Values",
        description="Numbers of SAE latents the k-sparse probes may use; latents ranked on the training split "
        "only (sae-probes' normalised class-mean difference).",
    )
    reg_type: str = Field(
        default="l1",
        title="Regularization Type",
        description="Penalty of the k-sparse probes ('l1' or 'l2'); the dense probe on raw activations uses "
        "'l2'.",
    )

    def __post_init__(self) -> None:
        if self.max_seq_len < 1 or self.llm_batch_size < 1:
            raise ValueError(
                f"max_seq_len and llm_batch_size must be positive, got {self.max_seq_len}, {self.llm_batch_size}"
            )
        if self.llm_dtype not in LLM_DTYPES:
            raise ValueError(f"llm_dtype must be one of {', '.join(LLM_DTYPES)}, got {self.llm_dtype!r}")
        if self.num_train < 2:
            raise ValueError(f"num_train must be at least 2 (one of each class), got {self.num_train}")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive, got {self.ks}")
        if self.reg_type not in PROBE_PENALTIES:
            raise ValueError(f"reg_type must be 'l1' or 'l2', got {self.reg_type!r}")
