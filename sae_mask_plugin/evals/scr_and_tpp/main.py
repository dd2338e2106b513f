"""SAEBench's SCR and TPP evals (`sae_bench.evals.scr_and_tpp`) through the plugin's registry.

SAEBench's `run_eval` loads the model by name in SAEBench's dtype table and stops at the first failing SAE; here
each SAE runs through SAEBench's `run_eval_single_sae` on the registry's shared model, in the LLM dtype the SAE was
trained on, and the output is SAEBench's (`ScrEvalOutput` / `TppEvalOutput`), built as SAEBench builds it. The
datasets (bias-in-bios, Amazon reviews) come from the Hugging Face hub (`check_datasets_reachable`). Activations
and probes are cached per model, hook and config under the cache folder.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sae_bench.evals.scr_and_tpp.eval_output import (
    EVAL_TYPE_ID_SCR,
    EVAL_TYPE_ID_TPP,
    ScrEvalOutput,
    ScrMetricCategories,
    ScrMetrics,
    ScrResultDetail,
    TppEvalOutput,
    TppMetricCategories,
    TppMetrics,
    TppResultDetail,
)
from sae_bench.evals.scr_and_tpp.main import run_eval_single_sae
from sae_bench.sae_bench_utils.activation_collection import LLM_NAME_TO_BATCH_SIZE
from sae_bench.sae_bench_utils.general_utils import str_to_dtype
from sae_lens import SAE
from transformer_lens import HookedTransformer

from sae_mask_plugin.evals.common import (
    LazyModel,
    path_safe,
    run_each_sae,
    saebench_output_fields,
    settings_key,
)
from sae_mask_plugin.evals.scr_and_tpp.eval_config import ScrEvalConfig, TppEvalConfig

DEFAULT_LLM_BATCH_SIZE = 32
"""Texts per forward pass for a model SAEBench's `LLM_NAME_TO_BATCH_SIZE` does not list."""


def eval_type(config: ScrEvalConfig | TppEvalConfig) -> str:
    """SAEBench's eval type id of a config: `scr` or `tpp`."""
    return EVAL_TYPE_ID_SCR if config.perform_scr else EVAL_TYPE_ID_TPP


def artifacts_folder(config: ScrEvalConfig | TppEvalConfig, hook_name: str, cache_root: Path) -> Path:
    """Where SAEBench keeps the LLM activations and probes of one model, hook and config (shared by SAEs)."""
    return (
        cache_root
        / "saebench"
        / eval_type(config)
        / path_safe(config.model_name)
        / f"{path_safe(hook_name)}-{settings_key(asdict(config))}"
    )


def evaluate_sae(
    model: HookedTransformer,
    sae: SAE,
    sae_name: str,
    config: ScrEvalConfig | TppEvalConfig,
    artifacts: Path,
    device: str,
) -> ScrEvalOutput | TppEvalOutput:
    """SCR or TPP of one SAE, SAEBench's output; the SAE runs in the LLM's dtype as in SAEBench (on a copy: the
    caller's SAE keeps its own)."""
    sae = copy.deepcopy(sae).to(device=device, dtype=str_to_dtype(config.llm_dtype))
    results, per_class = run_eval_single_sae(config, sae, model, device, str(artifacts))
    metrics = {name: value for name, value in results.items() if not isinstance(value, dict)}
    details = {name: value for name, value in results.items() if isinstance(value, dict)}
    fields = saebench_output_fields(sae_name, sae)
    if config.perform_scr:
        return ScrEvalOutput(
            eval_type_id=EVAL_TYPE_ID_SCR,
            eval_config=config,
            eval_result_metrics=ScrMetricCategories(scr_metrics=ScrMetrics(**metrics)),
            eval_result_details=[ScrResultDetail(dataset_name=name, **r) for name, r in details.items()],
            **fields,
        )
    return TppEvalOutput(
        eval_type_id=EVAL_TYPE_ID_TPP,
        eval_config=config,
        eval_result_metrics=TppMetricCategories(tpp_metrics=TppMetrics(**metrics)),
        eval_result_details=[TppResultDetail(dataset_name=name, **r) for name, r in details.items()],
        eval_result_unstructured=per_class,
        **fields,
    )


def run_eval(
    config: ScrEvalConfig | TppEvalConfig,
    selected_saes: list[tuple[str, SAE]],
    device: str,
    output_path: str,
    force_rerun: bool = False,
    model: HookedTransformer | LazyModel | None = None,
    cache_path: str | None = None,
) -> dict[str, dict[str, Any]]:
    """SAEBench-style entry: SCR (`ScrEvalConfig`) or TPP (`TppEvalConfig`) of each `(name, SAE)`, one JSON per
    SAE in `output_path`; `model` and `cache_path` (SAEBench's activations and probes) as in
    `evals.common.run_each_sae`. A None `llm_batch_size` becomes SAEBench's for the model."""
    if config.llm_batch_size is None:
        batch_size = LLM_NAME_TO_BATCH_SIZE.get(config.model_name, DEFAULT_LLM_BATCH_SIZE)
        config = replace(config, llm_batch_size=batch_size)

    def evaluate(sae_name: str, sae: SAE, lazy: LazyModel, cache_root: Path) -> ScrEvalOutput | TppEvalOutput:
        artifacts = artifacts_folder(config, sae.cfg.metadata.hook_name, cache_root)
        return evaluate_sae(lazy.get(), sae, sae_name, config, artifacts, device)

    return run_each_sae(
        config,
        selected_saes,
        device,
        output_path,
        force_rerun,
        model,
        cache_path,
        eval_type(config),
        evaluate,
    )
