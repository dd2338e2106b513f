"""The dtype the LLM runs in: bfloat16 where the CPU computes it natively, float32 otherwise.

A CPU with AMX-BF16 or AVX512-BF16 multiplies bfloat16 matrices several times faster than float32 ones (on a
Xeon with both, one thread: 1,620 vs 181 GFLOP/s), so the LLM pass, most of the time of every CPU run, runs in
bfloat16 there by default. Without them bfloat16 is emulated and slower than float32, so the default stays
float32 and says why. The default applies to the command line, the recipes, the demo and the embedded-default
helpers (`training.defaults`); SAELens's runner configs keep SAELens's own default (float32) and take it as
`model_from_pretrained_kwargs={"dtype": default_llm_dtype().dtype}`. The SAEs keep float32 weights.

Nothing here imports torch: `sae-mask info` and `--help` answer at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sae_mask_plugin.errors import SaeMaskUserError

LLM_DTYPES = ("float32", "bfloat16")
"""The LLM dtypes the plugin runs and records (SAE metadata key `LLM_DTYPE_METADATA_KEY`, eval configs)."""
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""`/proc/cpuinfo` flags of CPUs that compute bfloat16 matrix products natively (AMX tiles, AVX-512 dot products)."""
LLM_DTYPE_METADATA_KEY = "llm_dtype"
"""The key under which a saved SAE's metadata records the dtype of the LLM activations it was trained on."""
CPU_MODEL_METADATA_KEY = "cpu_model"
"""The key under which a saved SAE's metadata records the CPU model that computed its LLM activations (bfloat16
speed and rounding differ between CPU kinds; None where the CPU names no model)."""
UNRECORDED_LLM_DTYPE = "float32"
"""The dtype assumed for SAEs that record none (SAELens's default: stock SAELens SAEs, older plugin SAEs)."""
CPUINFO = Path("/proc/cpuinfo")
EMULATED_BF16_SLOWDOWN = 6.0
"""How much slower an LLM pass in bfloat16 runs than in float32 on a CPU that emulates bfloat16 (AVX2 only):
about 6x, an estimate from 2-core CPUs of this kind, not a measurement on the machine at hand."""


class LlmDtypeError(SaeMaskUserError, ValueError):
    """An LLM dtype the plugin does not run, or one that disagrees with the dtype an SAE was trained with."""


@dataclass(frozen=True)
class LlmDtypeChoice:
    """The resolved default LLM dtype, the CPU features that decided it and why."""

    dtype: str
    native_bf16: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        return f"{self.dtype} ({self.reason})"


def check_llm_dtype(value: str) -> str:
    """`value` when it is one of `LLM_DTYPES`, else `LlmDtypeError` (before any model load)."""
    if value not in LLM_DTYPES:
        raise LlmDtypeError(f"llm_dtype must be one of {', '.join(LLM_DTYPES)}; got {value!r}")
    return value


def cpu_flags(cpuinfo: Path | None = None) -> frozenset[str]:
    """The CPU feature flags of the first processor in `cpuinfo` (default `CPUINFO`, `/proc/cpuinfo`; empty when
    the file is missing: not Linux)."""
    try:
        text = (cpuinfo or CPUINFO).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_model(cpuinfo: Path | None = None) -> str | None:
    """The `model name` of the first processor in `cpuinfo` (default `CPUINFO`), e.g. `AMD EPYC 9R14 96-Core
    Processor`; None when the file is missing or names no model."""
    try:
        text = (cpuinfo or CPUINFO).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return None


def resolve_llm_dtype(flags: Iterable[str]) -> LlmDtypeChoice:
    """The default LLM dtype on a CPU with feature `flags`: bfloat16 when one of `NATIVE_BF16_FLAGS` is there."""
    native = tuple(flag for flag in NATIVE_BF16_FLAGS if flag in set(flags))
    if native:
        return LlmDtypeChoice("bfloat16", native, f"the CPU computes bfloat16 natively: {', '.join(native)}")
    return LlmDtypeChoice(
        "float32",
        native,
        f"the CPU has neither {' nor '.join(NATIVE_BF16_FLAGS)}, so bfloat16 would be emulated and slower; "
        "--llm_dtype bfloat16 forces it",
    )


@cache
def default_llm_dtype() -> LlmDtypeChoice:
    """The default LLM dtype of this machine's CPU (`resolve_llm_dtype` of `CPUINFO`'s flags), read once."""
    return resolve_llm_dtype(cpu_flags())


def emulated_bf16_notice(llm_dtype: str, way_out: str, choice: LlmDtypeChoice | None = None) -> str | None:
    """One line saying that `llm_dtype` is bfloat16 on a CPU that emulates it (None otherwise): the estimated
    slowdown and `way_out`, the option that runs float32 instead (e.g. `--set llm_dtype=float32`). `choice`
    defaults to this machine's `default_llm_dtype()`."""
    if llm_dtype != "bfloat16" or (choice or default_llm_dtype()).native_bf16:
        return None
    return (
        f"warning: the LLM runs in bfloat16, which this CPU emulates (no {' or '.join(NATIVE_BF16_FLAGS)}): about "
        f"{EMULATED_BF16_SLOWDOWN:g}x slower than float32 (estimated); {way_out} runs it in float32"
    )


def llm_dtype_or_default(value: str | None) -> str:
    """`value` checked, or this machine's default when None."""
    return default_llm_dtype().dtype if value is None else check_llm_dtype(value)


def recorded_llm_dtype(metadata: dict[str, object] | None) -> str:
    """The LLM dtype an SAE's metadata (its `cfg.json`'s `metadata`) records; float32 when it records none."""
    return str((metadata or {}).get(LLM_DTYPE_METADATA_KEY) or UNRECORDED_LLM_DTYPE)


def check_same_llm_dtype(sae_name: str, trained: str, requested: str) -> None:
    """Refuse to evaluate or calibrate an SAE on activations of another dtype than it was trained on."""
    if trained != requested:
        raise LlmDtypeError(
            f"SAE {sae_name!r} was trained on {trained} LLM activations but {requested} was asked for: an SAE "
            f"is evaluated in the dtype it was trained in. Pass --llm_dtype {trained} (or leave it unset to "
            f"use the SAE's own), or train the SAE in {requested}."
        )


def dtype_name(dtype: object) -> str:
    """`torch.bfloat16` or `"bfloat16"` -> `"bfloat16"`."""
    return str(dtype).removeprefix("torch.")


def model_llm_dtype(model: Any) -> str:
    """The dtype of a loaded model's floating-point weights, e.g. `"bfloat16"`."""
    return dtype_name(next(p.dtype for p in model.parameters() if p.is_floating_point()))


def with_llm_dtype(
    model_from_pretrained_kwargs: dict[str, Any] | None, llm_dtype: str | None
) -> dict[str, Any]:
    """SAELens's `model_from_pretrained_kwargs` with `dtype` set: `llm_dtype`, else the dtype already there,
    else this machine's default. A `llm_dtype` that contradicts a dtype already there is an `LlmDtypeError`."""
    kwargs = dict(model_from_pretrained_kwargs or {})
    given = None if kwargs.get("dtype") is None else dtype_name(kwargs["dtype"])
    if llm_dtype is not None and given is not None and given != llm_dtype:
        raise LlmDtypeError(
            f"llm_dtype {llm_dtype} contradicts model_from_pretrained_kwargs dtype {given}: give one of them"
        )
    kwargs["dtype"] = llm_dtype_or_default(llm_dtype if llm_dtype is not None else given)
    return kwargs
