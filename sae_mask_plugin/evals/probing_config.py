"""Config fields shared by the sparse-probing and OOD-probing evals: the model and how activations are computed."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.base_eval_output import BaseEvalConfig


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
