"""Masking settings and the LLM dtype stored with saved SAEs (in `SAEMetadata`, hence `cfg.json`) and with
activation caches: the runners write them, calibration, the evals and the report read them.

Stock `SAE.load_from_disk` keeps unknown metadata keys, so a masked SAE loads without the plugin; the plugin
reads the settings back with `read_masking_metadata`. An SAE without a masking record is a baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sae_mask_plugin.files import SAE_CFG_FILENAME
from sae_mask_plugin.llm_dtype import CPU_MODEL_METADATA_KEY, LLM_DTYPE_METADATA_KEY, cpu_model
from sae_mask_plugin.masking.config import MaskingConfig

if TYPE_CHECKING:  # reading saved folders needs no torch or SAELens (the report's and calibration's checks)
    from sae_lens.saes.sae import SAE, TrainingSAE

    from sae_mask_plugin.masking.core import TokenMasker

MASKING_METADATA_KEY = "masking"
CACHE_MASKING_FILENAME = "masking.json"
CACHE_LLM_DTYPE_FILENAME = "llm_dtype.json"


def masking_record(
    masker: TokenMasker, mask_token_string: str | None, first_batch_norm_ratio: float | None
) -> dict[str, Any]:
    """The JSON record of a masked run: the `MaskingConfig` with the mask token and seed resolved, plus the mask
    token's string and the norm ratio measured on the first batch."""
    record = masker.cfg.to_dict()
    record.update(
        mask_token=masker.mask_token_id,
        mask_token_string=mask_token_string,
        seed=masker.seed,
        first_batch_norm_ratio=first_batch_norm_ratio,
    )
    return record


def saved_training_architecture(cfg: dict[str, Any]) -> str:
    """The architecture an SAE was trained as, from its saved `cfg.json` (SAELens saves BatchTopK as JumpReLU)."""
    metadata = cfg.get("metadata") or {}
    return str(metadata.get("training_architecture") or cfg.get("architecture", "unknown"))


def saved_training_k(cfg: dict[str, Any]) -> int | None:
    """The training k of a saved (Batch)TopK-family SAE from its `cfg.json`, or None."""
    details = (cfg.get("metadata") or {}).get("training_architecture_details") or {}
    k = cfg.get("k", details.get("k"))
    return None if k is None else int(k)


def trained_positions(metadata: Any) -> tuple[int | None, ...]:
    """The window positions a run trained on, as a slice's arguments: SAELens's `seqpos_slice` from an SAE's
    metadata (a `SAEMetadata` or the `metadata` mapping of its `cfg.json`); `(None,)` (every position) when unset."""
    return tuple(metadata.get("seqpos_slice") or (None,))


def write_masking_metadata(sae: SAE[Any] | TrainingSAE[Any], record: dict[str, Any] | None) -> None:
    """Store `record` in the SAE's metadata (None: a baseline, nothing is written)."""
    if record is not None:
        sae.cfg.metadata[MASKING_METADATA_KEY] = record


def read_masking_record(source: str | Path | SAE[Any] | TrainingSAE[Any]) -> dict[str, Any] | None:
    """The raw masking record of a saved SAE folder or an SAE object; None for a baseline."""
    if isinstance(source, (str, Path)):
        cfg = json.loads((Path(source) / SAE_CFG_FILENAME).read_text())
        record = (cfg.get("metadata") or {}).get(MASKING_METADATA_KEY)
    else:
        record = source.cfg.metadata.get(MASKING_METADATA_KEY)
    return record or None


def read_masking_metadata(source: str | Path | SAE[Any] | TrainingSAE[Any]) -> MaskingConfig | None:
    """The `MaskingConfig` an SAE was trained with (mask token as its resolved id); None for a baseline."""
    record = read_masking_record(source)
    if record is None:
        return None
    masking = MaskingConfig.from_dict(record)
    return masking if masking.is_active else None


def write_cache_masking(cache_path: str | Path, record: dict[str, Any] | None) -> None:
    """Record the masking of an activation cache next to it (`masking.json`; `null` for an unmasked cache)."""
    (Path(cache_path) / CACHE_MASKING_FILENAME).write_text(json.dumps(record, indent=2))


def read_cache_masking(cache_path: str | Path) -> dict[str, Any] | None:
    """The masking record of an activation cache; None when it was cached without masking."""
    path = Path(cache_path) / CACHE_MASKING_FILENAME
    return json.loads(path.read_text()) if path.is_file() else None


def write_compute_metadata(sae: SAE[Any] | TrainingSAE[Any], llm_dtype: str) -> None:
    """Record the dtype of the LLM activations the SAE trained on (`llm_dtype.recorded_llm_dtype` reads it) and
    the CPU model of this machine, which computed them."""
    sae.cfg.metadata[LLM_DTYPE_METADATA_KEY] = llm_dtype
    sae.cfg.metadata[CPU_MODEL_METADATA_KEY] = cpu_model()


def write_cache_llm_dtype(cache_path: str | Path, llm_dtype: str) -> None:
    """Record the dtype of the LLM an activation cache was computed with (`llm_dtype.json`)."""
    (Path(cache_path) / CACHE_LLM_DTYPE_FILENAME).write_text(json.dumps({LLM_DTYPE_METADATA_KEY: llm_dtype}))


def read_cache_llm_dtype(cache_path: str | Path) -> str | None:
    """The LLM dtype of an activation cache; None for caches that record none."""
    path = Path(cache_path) / CACHE_LLM_DTYPE_FILENAME
    return json.loads(path.read_text())[LLM_DTYPE_METADATA_KEY] if path.is_file() else None
