"""`evaluate_saes`: run the evals on saved SAE folders, resumable, one failure never losing other results.

Output layout (SAEBench's): `<out_dir>/<eval>/<sae name>_custom_sae_eval_results.json` per SAE and eval,
`<out_dir>/<eval>/<sae name>_custom_sae_error.json` when that pair failed, shared caches under
`<out_dir>/cache/`, and `<out_dir>/evaluation_summary.json` indexing it all.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import Any

from sae_bench.sae_bench_utils.general_utils import get_results_filepath
from tqdm.auto import tqdm

from sae_mask_plugin.embedded.probing_data import OOD_TASKS, list_probing_datasets
from sae_mask_plugin.evals.absorption import eval_config as absorption_config
from sae_mask_plugin.evals.absorption import main as absorption_main
from sae_mask_plugin.evals.absorption.main import check_absorption_hook
from sae_mask_plugin.evals.common import (
    SUMMARY_FILENAME,
    EvalInputError,
    LazyModel,
    SaeSource,
    check_sae_fits_model,
    is_complete_result,
    load_sae,
    model_dimensions,
    read_sae_sources,
)
from sae_mask_plugin.evals.core import eval_config as core_config
from sae_mask_plugin.evals.core import main as core_main
from sae_mask_plugin.evals.ood_probing import eval_config as ood_config
from sae_mask_plugin.evals.ood_probing import main as ood_main
from sae_mask_plugin.evals.scr_and_tpp import eval_config as scr_tpp_config
from sae_mask_plugin.evals.scr_and_tpp import main as scr_tpp_main
from sae_mask_plugin.evals.sparse_probing import eval_config as sparse_config
from sae_mask_plugin.evals.sparse_probing import main as sparse_main
from sae_mask_plugin.files import write_json_atomic

PRESETS = ("cpu", "full")


@dataclass(frozen=True)
class EvalSpec:
    """How to configure and run one eval: its SAEBench-style `run_eval`, its config class and CPU preset, and
    for an eval whose data may be out of reach, `check_available(model_name)`, which raises
    `EvalUnavailableError` before any model load."""

    run_eval: Callable[..., dict[str, Any]]
    config_class: type
    cpu_preset: Callable[[str], Any]
    check_available: Callable[[str], None] | None = None


EVAL_SPECS: dict[str, EvalSpec] = {
    "absorption": EvalSpec(
        absorption_main.run_eval, absorption_config.AbsorptionEvalConfig, absorption_config.cpu_preset
    ),
    "sparse_probing": EvalSpec(
        sparse_main.run_eval, sparse_config.SparseProbingEvalConfig, sparse_config.cpu_preset
    ),
    "ood": EvalSpec(ood_main.run_eval, ood_config.OodProbingEvalConfig, ood_config.cpu_preset),
    "core": EvalSpec(core_main.run_eval, core_config.CoreEvalConfig, core_config.cpu_preset),
    "scr": EvalSpec(
        scr_tpp_main.run_eval,
        scr_tpp_config.ScrEvalConfig,
        scr_tpp_config.scr_cpu_preset,
        scr_tpp_config.check_datasets_reachable,
    ),
    "tpp": EvalSpec(
        scr_tpp_main.run_eval,
        scr_tpp_config.TppEvalConfig,
        scr_tpp_config.tpp_cpu_preset,
        scr_tpp_config.check_datasets_reachable,
    ),
}
EVAL_NAMES: tuple[str, ...] = tuple(EVAL_SPECS)
OFFLINE_EVAL_NAMES: tuple[str, ...] = tuple(
    name for name, spec in EVAL_SPECS.items() if not spec.check_available
)
"""The evals that run anywhere, the embedded default included: what runs when no evals are named."""


def parse_eval_names(evals: str | Sequence[str]) -> list[str]:
    """Eval names from a comma-separated string or a sequence; `ood_probing` is accepted for `ood`."""
    names = [name.strip() for name in (evals.split(",") if isinstance(evals, str) else evals) if name.strip()]
    names = ["ood" if name == "ood_probing" else name for name in names]
    unknown = [name for name in names if name not in EVAL_NAMES]
    if unknown or not names:
        raise EvalInputError(f"unknown eval(s) {unknown or names}; choose from {', '.join(EVAL_NAMES)}")
    return list(dict.fromkeys(names))


def make_config(
    eval_name: str,
    model_name: str,
    preset: str = "cpu",
    ood_tasks: Sequence[str] | None = None,
    sparse_probing_datasets: Sequence[str] | None = None,
) -> Any:
    """The config of `eval_name` for `model_name` under `preset` ('cpu': documented CPU presets; 'full':
    SAEBench's / sae-probes' default sizes), with the task or dataset lists overridden when given."""
    if preset not in PRESETS:
        raise EvalInputError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    spec = EVAL_SPECS[eval_name]
    config = spec.cpu_preset(model_name) if preset == "cpu" else spec.config_class(model_name=model_name)
    if eval_name == "ood" and ood_tasks is not None:
        config = replace(config, task_names=list(ood_tasks))
    if eval_name == "sparse_probing" and sparse_probing_datasets is not None:
        config = replace(config, dataset_names=list(sparse_probing_datasets))
    return config


def _check_config_names(configs: dict[str, Any]) -> None:
    """Task and dataset names of the chosen configs must be ones sae-probes ships."""
    if "ood" in configs:
        config = configs["ood"]
        unknown = sorted(set(config.task_names) - set(OOD_TASKS))
        if unknown:
            raise EvalInputError(f"unknown OOD task(s) {unknown}; sae-probes ships {', '.join(OOD_TASKS)}")
    if "sparse_probing" in configs:
        unknown = sorted(set(configs["sparse_probing"].dataset_names) - set(list_probing_datasets()))
        if unknown:
            raise EvalInputError(f"unknown sparse-probing dataset(s) {unknown}; see sae-probes' cleaned_data")


def validate_inputs(
    sae_paths: Sequence[str | Path],
    evals: str | Sequence[str],
    model_name: str | None = None,
    preset: str = "cpu",
    ood_tasks: Sequence[str] | None = None,
    sparse_probing_datasets: Sequence[str] | None = None,
    configs: dict[str, Any] | None = None,
    llm_dtype: str | None = None,
) -> tuple[list[SaeSource], dict[str, Any]]:
    """Every check that needs no model weights: eval, preset, task and dataset names, SAE folders, whether
    each SAE's hook and width fit its model's configuration, whether an eval's data can be had for each model
    (`EvalSpec.check_available`), and whether the LLM dtype asked for (`llm_dtype`, or that of an explicit config
    in `configs`) is the one each SAE was trained on. Returns the SAE sources and the config of each eval (from
    `configs`, else from `make_config`); raises an error on the first problem."""
    chosen = {
        name: configs[name]
        if configs and name in configs
        else make_config(name, "", preset, ood_tasks, sparse_probing_datasets)
        for name in parse_eval_names(evals)
    }
    _check_config_names(chosen)
    sources = read_sae_sources(sae_paths, model_name)
    checks = dict.fromkeys(
        check for name in chosen if (check := EVAL_SPECS[name].check_available) is not None
    )
    models = dict.fromkeys(source.model_name for source in sources)
    for check in checks:
        for model in models:
            check(model)
    dims = {name: model_dimensions(name) for name in models}
    requested = [llm_dtype, *(getattr(configs.get(name), "llm_dtype", None) for name in configs or {})]
    for source in sources:
        check_sae_fits_model(source, dims[source.model_name])
        for dtype in requested:
            source.eval_llm_dtype(dtype)
        if "absorption" in chosen:
            check_absorption_hook(source.hook_name)
    return sources, chosen


def evaluate_saes(
    sae_paths: Sequence[str | Path],
    evals: str | Sequence[str] = OFFLINE_EVAL_NAMES,
    out_dir: str | Path = "eval_results",
    preset: str = "cpu",
    force: bool = False,
    model_name: str | None = None,
    device: str = "cpu",
    ood_tasks: Sequence[str] | None = None,
    sparse_probing_datasets: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    configs: dict[str, Any] | None = None,
    llm_dtype: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run `evals` on every SAE folder; returns (and writes to `<out_dir>/evaluation_summary.json`) a summary
    `{sae name: {"path", "model_name", "hook_name", "evals": {eval: {"status", "result_path", "seconds",
    "error"}}}}` with status 'done', 'skipped' (result already there, no `force`) or 'failed'.

    All input is checked before any model is loaded (`validate_inputs`). The model is loaded once per model
    name, and only if some SAE/eval pair still has to run; LLM activations are cached under `cache_dir`
    (default `<out_dir>/cache`) and shared by all SAEs. A failing SAE or eval is recorded and the rest goes on.
    `configs` maps eval names to explicit config objects used instead of the preset's (their `model_name` is
    replaced by each SAE's model). Each SAE is evaluated on LLM activations of the dtype it was trained on
    (its metadata's `llm_dtype`, recorded in each result's `eval_config.llm_dtype`); `llm_dtype` (or an explicit
    config's) that differs from an SAE's is refused before any model load.
    """
    sources, eval_configs = validate_inputs(
        sae_paths, evals, model_name, preset, ood_tasks, sparse_probing_datasets, configs, llm_dtype
    )
    out = Path(out_dir)
    cache_root = str(Path(cache_dir) if cache_dir is not None else out / "cache")
    summary: dict[str, dict[str, Any]] = {
        source.name: {
            "path": str(source.path),
            "model_name": source.model_name,
            "hook_name": source.hook_name,
            "llm_dtype": source.llm_dtype,
            "evals": {},
        }
        for source in sources
    }
    models = {
        key: LazyModel(*key, device) for key in {(source.model_name, source.llm_dtype) for source in sources}
    }
    with tqdm(total=len(sources) * len(eval_configs), desc="SAE evals") as progress:
        for source in sources:
            load = cache(partial(load_sae, source, device))  # loaded once, and only if an eval runs
            for eval_name, base_config in eval_configs.items():
                progress.set_postfix_str(f"{source.name}: {eval_name}")
                model = models[(source.model_name, source.llm_dtype)]
                record = _evaluate_pair(
                    eval_name, base_config, source, load, out, force, model, cache_root, device
                )
                summary[source.name]["evals"][eval_name] = record
                if record["status"] != "skipped":
                    write_json_atomic(out / SUMMARY_FILENAME, summary)
                progress.update()
    write_json_atomic(out / SUMMARY_FILENAME, summary)
    return summary


def _evaluate_pair(
    eval_name: str,
    base_config: Any,
    source: SaeSource,
    load: Callable[[], Any],
    out: Path,
    force: bool,
    model: LazyModel,
    cache_root: str,
    device: str,
) -> dict[str, Any]:
    """Run one eval on one SAE (`load()` gives it; `base_config` with the SAE's model and LLM dtype) unless its
    result is complete and not `force`; returns its summary record. A failure is recorded, not raised: in the
    record and in `<sae name>_custom_sae_error.json` beside the results (removed once the pair succeeds), so the
    other SAEs and evals go on."""
    output_path = out / eval_name
    result = Path(get_results_filepath(str(output_path), source.name, "custom_sae"))
    record: dict[str, Any] = {"result_path": str(result)}
    if is_complete_result(result) and not force:
        record["status"] = "skipped"
        return record
    error_path = result.with_name(result.name.replace("_eval_results.json", "_error.json"))
    started = time.perf_counter()
    try:
        EVAL_SPECS[eval_name].run_eval(
            replace(base_config, model_name=source.model_name, llm_dtype=source.llm_dtype),
            [(source.name, load())],
            device,
            str(output_path),
            force_rerun=force,
            model=model,
            cache_path=cache_root,
        )
        record["status"] = "done"
        error_path.unlink(missing_ok=True)
    except Exception as error:  # one failing pair must not lose the others' results
        record["status"] = "failed"
        record["error"] = f"{type(error).__name__}: {error}"
        write_json_atomic(error_path, {"error": record["error"], "traceback": traceback.format_exc()})
        tqdm.write(f"{source.name} / {eval_name} failed: {record['error']}")
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record
