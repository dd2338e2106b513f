"""Configuration of SAEBench's SCR and TPP evals (`sae_bench.evals.scr_and_tpp`): SAEBench's config, one class per
eval, with the LLM settings filled when the eval runs instead of from SAEBench's per-model tables."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.scr_and_tpp.eval_config import ScrAndTppEvalConfig

from sae_mask_plugin.evals.common import EvalUnavailableError
from sae_mask_plugin.llm_dtype import LLM_DTYPES

SCR_TPP_DATASETS = ("LabHC/bias_in_bios_class_set1", "canrager/amazon_reviews_mcauley_1and5")
"""The Hugging Face hub datasets SCR and TPP probe (SAEBench's default `dataset_names`)."""


@dataclass
class _SaeBenchProbingEvalConfig(ScrAndTppEvalConfig):
    llm_batch_size: int | None = Field(
        default=None,
        title="LLM Batch Size",
        description="Texts per forward pass; None: SAEBench's batch size for the model (32 for models it does "
        "not list), filled in when the eval runs.",
    )
    llm_dtype: str = Field(
        default="float32",
        title="LLM Data Type",
        description="LLM data type; the evals run each SAE in the dtype it was trained on (its metadata).",
    )

    def __post_init__(self) -> None:
        if self.llm_dtype not in LLM_DTYPES:
            raise ValueError(f"llm_dtype must be one of {', '.join(LLM_DTYPES)}, got {self.llm_dtype!r}")
        if self.llm_batch_size is not None and self.llm_batch_size < 1:
            raise ValueError(f"llm_batch_size must be positive or None, got {self.llm_batch_size}")


@dataclass
class ScrEvalConfig(_SaeBenchProbingEvalConfig):
    perform_scr: bool = Field(
        default=True,
        title="Perform Spurious Correlation Removal",
        description="True: this config runs SCR (TppEvalConfig runs TPP).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.perform_scr:
            raise ValueError("ScrEvalConfig runs SCR: perform_scr must be True (TppEvalConfig runs TPP)")


@dataclass
class TppEvalConfig(_SaeBenchProbingEvalConfig):
    perform_scr: bool = Field(
        default=False,
        title="Perform Spurious Correlation Removal",
        description="False: this config runs TPP (ScrEvalConfig runs SCR).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.perform_scr:
            raise ValueError("TppEvalConfig runs TPP: perform_scr must be False (ScrEvalConfig runs SCR)")


def scr_cpu_preset(model_name: str) -> ScrEvalConfig:
    """SAEBench's SCR sizes: the eval has no smaller documented setting."""
    return ScrEvalConfig(model_name=model_name)


def tpp_cpu_preset(model_name: str) -> TppEvalConfig:
    """SAEBench's TPP sizes: the eval has no smaller documented setting."""
    return TppEvalConfig(model_name=model_name)


def check_datasets_reachable(model_name: str) -> None:
    """Raise `EvalUnavailableError` (before any model load) where SCR and TPP cannot get their hub datasets:
    on the embedded default, whose setting is offline, or where the hub cannot be reached."""
    from sae_mask_plugin.embedded.model import hub_reachable, is_embedded_name

    if is_embedded_name(model_name):
        reason = f"{model_name} is the embedded offline default; they run on hub models"
    elif not hub_reachable():
        reason = "this machine cannot reach the hub"
    else:
        return
    raise EvalUnavailableError(
        f"SCR and TPP cannot run here: they load their datasets ({', '.join(SCR_TPP_DATASETS)}) from the Hugging Face "
        f"hub, and {reason}"
    )
