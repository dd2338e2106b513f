"""Shared plumbing of the evals: reading and checking SAE folders, result paths, atomic writes, cache keys.

Everything here answers before any model is loaded, so bad input fails fast with one clear message; torch, SAELens
and SAEBench load only in the functions that use an SAE, so SAE folders are checked before they load.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.files import SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, write_text_atomic
from sae_mask_plugin.llm_dtype import UNRECORDED_LLM_DTYPE, check_same_llm_dtype, recorded_llm_dtype

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE

SUMMARY_FILENAME = "evaluation_summary.json"
"""The index of an eval output folder (`evals.runner.evaluate_saes`), which the report reads."""

# TransformerLens hook suffixes whose width is the residual stream (d_model), and the MLP hidden width.
_D_MODEL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")
_D_MLP_HOOKS = ("mlp.hook_pre", "mlp.hook_post")
_BLOCK_HOOK = re.compile(r"^blocks\.(\d+)\.(.+)$")


class EvalInputError(SaeMaskUserError, ValueError):
    """Bad input to the evals (SAE folder, eval name, dataset or task name), found before any model load."""


class EvalUnavailableError(EvalInputError):
    """An eval that cannot run here (its data out of reach), found before any model load."""


@dataclass(frozen=True)
class SaeSource:
    """An SAE folder on disk, read from its `cfg.json` without loading weights or the model.

    `name` identifies the SAE in result files (SAEBench's `<release>_<id>` slot); `model_name` is the
    `--model` override when given, else the SAE's `metadata.model_name`; `llm_dtype` is the dtype of the LLM
    activations it was trained on (`metadata.llm_dtype`; float32 when it records none).
    """

    path: Path
    name: str
    model_name: str
    hook_name: str
    d_in: int
    d_sae: int
    architecture: str
    llm_dtype: str = UNRECORDED_LLM_DTYPE

    def eval_llm_dtype(self, requested: str | None) -> str:
        """The LLM dtype to evaluate this SAE in: its own, or `requested` when that is the same (else
        `LlmDtypeError`, before any model load)."""
        if requested is not None:
            check_same_llm_dtype(self.name, self.llm_dtype, requested)
        return self.llm_dtype


def hook_layer(hook_name: str) -> int:
    """Block index of a `blocks.<layer>.<hook>` TransformerLens hook name."""
    match = _BLOCK_HOOK.match(hook_name)
    if match is None:
        raise EvalInputError(f"hook {hook_name!r} is not a `blocks.<layer>.<hook>` TransformerLens hook")
    return int(match.group(1))


def read_sae_source(path: str | Path, model_name: str | None = None, name: str | None = None) -> SaeSource:
    """Read and check an SAE folder saved by SAELens (or this plugin): `cfg.json` plus weights."""
    folder = Path(path).expanduser()
    cfg_path = folder / SAE_CFG_FILENAME
    if not folder.is_dir():
        raise EvalInputError(f"SAE folder {str(folder)!r} does not exist")
    if not cfg_path.is_file():
        raise EvalInputError(f"{str(folder)!r} is not a saved SAE: it has no {SAE_CFG_FILENAME}")
    if not (folder / SAE_WEIGHTS_FILENAME).is_file():
        raise EvalInputError(f"{str(folder)!r} is not a saved SAE: it has no {SAE_WEIGHTS_FILENAME}")
    try:
        cfg = json.loads(cfg_path.read_text())
        metadata = cfg.get("metadata") or {}
        hook_name = metadata.get("hook_name") or cfg["hook_name"]
        source = SaeSource(
            path=folder.resolve(),
            name=name or folder.resolve().name,
            model_name=model_name or metadata.get("model_name") or cfg["model_name"],
            hook_name=str(hook_name),
            d_in=int(cfg["d_in"]),
            d_sae=int(cfg["d_sae"]),
            architecture=str(cfg.get("architecture", "standard")),
            llm_dtype=recorded_llm_dtype(metadata),
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EvalInputError(f"{str(cfg_path)!r} is not valid JSON: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise EvalInputError(
            f"{str(cfg_path)!r} lacks a usable field ({type(error).__name__}: {error}); an SAE's cfg.json needs "
            "d_in, d_sae and metadata.model_name / metadata.hook_name (or pass the model explicitly)"
        ) from None
    hook_layer(source.hook_name)
    return source


def read_sae_sources(sae_paths: Sequence[str | Path], model_name: str | None = None) -> list[SaeSource]:
    """Checked SAE sources with unique names (a folder name used twice gets its parent folder's name in front)."""
    if not sae_paths:
        raise EvalInputError("no SAE given")
    sources = [read_sae_source(path, model_name) for path in sae_paths]
    names = [source.name for source in sources]
    return [
        read_sae_source(source.path, model_name, f"{source.path.parent.name}_{source.name}")
        if names.count(source.name) > 1
        else source
        for source in sources
    ]


def model_dimensions(model_name: str) -> dict[str, int]:
    """`n_layers`, `d_model` and `d_mlp` of a TransformerLens model, read from its config (no weights)."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    from sae_mask_plugin.embedded.model import ModelUnavailableError, register_with_transformer_lens

    register_with_transformer_lens()  # the embedded default resolves by name
    try:
        cfg = get_pretrained_model_config(model_name)
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"cannot read the configuration of model {model_name!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]})"
        ) from None
    return {"n_layers": cfg.n_layers, "d_model": cfg.d_model, "d_mlp": cfg.d_mlp or 0}


def check_sae_fits_model(source: SaeSource, dims: dict[str, int]) -> None:
    """Raise `EvalInputError` unless the SAE's hook exists in the model and its width is the SAE's `d_in`."""
    layer = hook_layer(source.hook_name)
    suffix = _BLOCK_HOOK.match(source.hook_name).group(2)  # type: ignore[union-attr]
    if layer >= dims["n_layers"]:
        raise EvalInputError(
            f"SAE {source.name!r} reads {source.hook_name!r} but {source.model_name!r} has only "
            f"{dims['n_layers']} layers"
        )
    if suffix in _D_MODEL_HOOKS:
        width = dims["d_model"]
    elif suffix in _D_MLP_HOOKS:
        width = dims["d_mlp"]
    else:
        raise EvalInputError(
            f"SAE {source.name!r} reads {source.hook_name!r}; the evals support the hooks "
            f"{', '.join(_D_MODEL_HOOKS + _D_MLP_HOOKS)}"
        )
    if width != source.d_in:
        raise EvalInputError(
            f"SAE {source.name!r} has d_in={source.d_in} but {source.hook_name!r} of {source.model_name!r} "
            f"is {width} wide"
        )


def load_sae(source: SaeSource, device: str) -> SAE:
    """Load the SAE of `source` on `device`, in float32."""
    from sae_lens import SAE

    return SAE.load_from_disk(str(source.path), device=device, dtype="float32")


def encode(sae: SAE, activations: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """SAE latents of `activations` [n, d_in] -> [n, d_sae], float32 on the CPU, in batches."""
    import torch

    with torch.no_grad():
        chunks = [
            sae.encode(activations[start : start + batch_size].to(sae.device, sae.dtype)).float().cpu()
            for start in range(0, activations.shape[0], batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.zeros(0, sae.cfg.d_sae)


def sae_fingerprint(sae: SAE) -> str:
    """A short hash of an SAE's weights: per-SAE caches stay valid only for the very same weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(sae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def saebench_output_fields(sae_name: str, sae: SAE) -> dict[str, Any]:
    """The run and provenance fields every SAEBench eval output carries, for a custom SAE named `sae_name`."""
    from sae_bench.sae_bench_utils import get_eval_uuid, get_sae_bench_version, get_sae_lens_version

    return {
        "eval_id": get_eval_uuid(),
        "datetime_epoch_millis": int(datetime.now().timestamp() * 1000),
        "sae_bench_commit_hash": get_sae_bench_version(),
        "sae_lens_id": "custom_sae",
        "sae_lens_release_id": sae_name,
        "sae_lens_version": get_sae_lens_version(),
        "sae_cfg_dict": sae.cfg.to_dict(),
    }


def is_complete_result(path: str | Path) -> bool:
    """True when `path` holds a parseable JSON result (an interrupted or corrupt file counts as missing)."""
    try:
        return isinstance(json.loads(Path(path).read_text()), dict)
    except (OSError, ValueError):
        return False


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable hash of JSON-serialisable settings, for cache folder names."""
    encoded = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def path_safe(name: str) -> str:
    """`name` with every character outside [A-Za-z0-9._-] replaced, for use as one path component."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "_"


class LazyModel:
    """The evals' LLM, loaded on first use only (results that are already done never load it)."""

    def __init__(self, model_name: str, llm_dtype: str, device: str, model=None):
        self.model_name = model_name
        self.llm_dtype = llm_dtype
        self.device = device
        self._model = model

    @classmethod
    def of(cls, model, model_name: str, llm_dtype: str, device: str) -> LazyModel:
        """`model` itself when it is a `LazyModel`, else a `LazyModel` around it (None: load by name)."""
        return model if isinstance(model, LazyModel) else cls(model_name, llm_dtype, device, model)

    def get(self):
        """The `HookedTransformer`, loaded offline-aware (embedded default or hub name) on first call."""
        if self._model is None:
            from sae_bench.sae_bench_utils.general_utils import str_to_dtype

            from sae_mask_plugin.embedded.model import load_model

            self._model = load_model(self.model_name, device=self.device, dtype=str_to_dtype(self.llm_dtype))
        return self._model


def run_each_sae(
    config: Any,
    selected_saes: list[tuple[str, SAE]],
    device: str,
    output_path: str | Path,
    force_rerun: bool,
    model: Any,
    cache_path: str | Path | None,
    description: str,
    evaluate: Callable[[str, SAE, LazyModel, Path], Any],
) -> dict[str, dict[str, Any]]:
    """The body of every eval's SAEBench-style `run_eval`: SAEBench's per-SAE loop.

    SAEs whose result file exists are skipped (unless `force_rerun`); the others get SAEBench's standard config
    fields (`load_and_format_sae`) on `device` and are evaluated with `evaluate(name, sae, model, cache_root)`,
    each result written atomically as `<output_path>/<name>_custom_sae_eval_results.json`. `model` (a
    `HookedTransformer`, a `LazyModel`, or None: `config.model_name` in `config.llm_dtype`) is loaded on first
    use only; `cache_root` is `cache_path`, default `<output_path>/cache`."""
    from sae_bench.sae_bench_utils.general_utils import get_results_filepath, load_and_format_sae

    lazy = LazyModel.of(model, config.model_name, config.llm_dtype, device)
    cache_root = Path(cache_path) if cache_path is not None else Path(output_path) / "cache"
    results: dict[str, dict[str, Any]] = {}
    for sae_name, sae in tqdm(selected_saes, desc=description):
        path = get_results_filepath(str(output_path), sae_name, "custom_sae")
        if is_complete_result(path) and not force_rerun:
            continue
        _, sae, _ = load_and_format_sae(sae_name, sae.to(device=device), device)  # type: ignore[misc]
        output = evaluate(sae_name, sae, lazy, cache_root)
        write_text_atomic(path, output.to_json())
        results[f"{sae_name}_custom_sae"] = asdict(output)
    return results
