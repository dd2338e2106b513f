"""Checks of a masked run that need the tokenizer or the model's structure but not its weights.

They run before the model is loaded, so bad input costs no model load and no compute. A model that cannot be
inspected this way (not a TransformerLens model, or not reachable offline) is checked after loading instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
from sae_lens.util import get_special_token_ids
from transformer_lens import HookedRootModule
from transformer_lens import loading_from_pretrained as loading
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from sae_mask_plugin.embedded.model import check_hooks, model_hook_names, register_with_transformer_lens
from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.masking.config import MaskingConfig, MaskingConfigError
from sae_mask_plugin.masking.core import TokenMasker
from sae_mask_plugin.masking.mask_token import default_mask_token, resolve_mask_token

# The checks and the runners (which import this module) resolve model names through TransformerLens: the embedded
# one must resolve.
register_with_transformer_lens()


def load_tokenizer(model_name: str) -> PreTrainedTokenizerBase | None:
    """The tokenizer of a TransformerLens model name, without its weights; None if it cannot be had offline.

    Names resolve through `loading.get_official_model_name` looked up at call time, which the plugin extends
    with the embedded model."""
    try:
        return AutoTokenizer.from_pretrained(loading.get_official_model_name(model_name))
    except (OSError, ValueError):
        return None


class CachedActivationsShapeError(SaeMaskUserError, ValueError):
    """An activation cache whose windows do not have the run's `context_size` positions."""


def check_cached_window_length(cached_activations_path: str, hook_name: str, context_size: int) -> None:
    """Raise `CachedActivationsShapeError` when the cache at `cached_activations_path` holds windows of another length
    than `context_size` (SAELens refuses it only after the model loads). A cache built with a `seqpos_slice` holds
    the kept positions only, so a run training on it needs `context_size` = those positions and no slice of its
    own. A missing cache or hook is left to SAELens's own message."""
    if not Path(cached_activations_path).exists():
        return
    features = datasets.load_from_disk(cached_activations_path).features
    if hook_name not in features:
        return
    cached_positions = features[hook_name].shape[0]
    if cached_positions != context_size:
        raise CachedActivationsShapeError(
            f"the activation cache {cached_activations_path} holds windows of {cached_positions} positions but the "
            f"run has context_size={context_size}: set context_size={cached_positions} (a cache built with a "
            "seqpos_slice holds only the kept positions; train on it with seqpos_slice=(None,))"
        )


def preflight(
    masking: MaskingConfig,
    *,
    model_name: str,
    model_class_name: str,
    hook_names: Iterable[str],
    override_model: HookedRootModule | None = None,
) -> None:
    """Check hook names and the mask token against the model's structure and tokenizer, before loading it."""
    if override_model is not None:
        tokenizer, available = override_model.tokenizer, set(override_model.hook_dict)
    else:
        tokenizer, available = load_tokenizer(model_name), model_hook_names(model_name, model_class_name)
    check_hooks(hook_names, available, model_name)
    if (
        masking.is_active
        and masking.uses_mask_token
        and masking.mask_token is not None
        and tokenizer is not None
    ):
        resolve_mask_token(masking.mask_token, tokenizer)


def build_masker(
    masking: MaskingConfig,
    model: HookedRootModule,
    *,
    hook_name: str,
    dataset: Iterable[dict[str, Any]],
    context_size: int,
    prepend_bos: bool,
    total_tokens: int,
    seed: int,
) -> tuple[TokenMasker, str | None]:
    """The run's masker (mask token resolved, or chosen by measurement on `dataset`) and the mask token string."""
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise MaskingConfigError("masked training needs a model with a tokenizer")
    special = get_special_token_ids(tokenizer)
    check_hooks([hook_name], set(model.hook_dict), getattr(model.cfg, "model_name", "model"))
    mask_token_id: int | None = None
    mask_token_string: str | None = None
    if masking.is_active and masking.uses_mask_token:
        if masking.mask_token is None:
            chosen = default_mask_token(
                model,
                hook_name,
                dataset,
                context_size=context_size,
                prepend_bos=prepend_bos,
                protected_ids=special,
                p=masking.max_p,
                seed=seed,
            )
            mask_token_id, mask_token_string = chosen.token_id, chosen.token
            print(
                f"mask token {chosen.describe()} at {hook_name}: chosen by measurement, the candidate whose "
                "masked/clean norm ratio is closest to 1 (sae-mask mask-tokens lists them all)",
                flush=True,
            )
        else:
            mask_token_id, mask_token_string = resolve_mask_token(masking.mask_token, tokenizer)
    masker = TokenMasker(
        masking,
        vocab_size=model.cfg.d_vocab,
        mask_token_id=mask_token_id,
        special_token_ids=special,
        total_tokens=total_tokens,
        seed=seed,
    )
    return masker, mask_token_string
