"""`sae-mask mask-tokens`: rank candidate mask tokens of a model and hook by their activation-norm ratio."""

from __future__ import annotations

import argparse
import sys

from sae_mask_plugin.embedded.model import DEFAULT_HOOK, EMBEDDED_MODEL_NAME
from sae_mask_plugin.errors import CommandParser, reports_user_errors
from sae_mask_plugin.llm_dtype import LLM_DTYPES, llm_dtype_or_default
from sae_mask_plugin.masking.config import DEFAULT_MAX_NORM_RATIO


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="sae-mask mask-tokens",
        description="Mask real text with each candidate token (the tokenizer's special tokens and a few ordinary "
        "ones) and print the median activation norm at masked positions over that at clean positions. A ratio "
        "near 1 is safe; far above 1 (an attention-sink token) makes SAEs fit outliers and die on clean text.",
    )
    parser.add_argument(
        "--model", default=EMBEDDED_MODEL_NAME, help="TransformerLens model name (default: %(default)s)"
    )
    parser.add_argument("--hook", default=DEFAULT_HOOK, help="hook the SAE reads (default: %(default)s)")
    parser.add_argument(
        "--p", type=float, default=0.3, help="masking probability of the measurement (default: %(default)s)"
    )
    parser.add_argument(
        "--n-sequences",
        type=int,
        default=8,
        help="contexts of the embedded corpus measured on (default: %(default)s)",
    )
    parser.add_argument(
        "--context-size", type=int, default=128, help="tokens per context (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask draw (default: %(default)s)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_MAX_NORM_RATIO,
        help="ratio above which training stops on its first batch (masking.max_norm_ratio; default: %(default)s)",
    )
    parser.add_argument(
        "--llm_dtype",
        choices=LLM_DTYPES,
        default=None,
        help="dtype the LLM runs in, as in training (default: bfloat16 where the CPU computes it natively, "
        "else float32; see `sae-mask info`)",
    )
    return parser


@reports_user_errors("sae-mask mask-tokens")
def main(argv: list[str]) -> int:
    """Entry point of `sae-mask mask-tokens`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not 0.0 < args.p < 1.0 or args.n_sequences < 1 or args.context_size < 2:
        print(
            "sae-mask mask-tokens: need 0 < --p < 1, --n-sequences >= 1, --context-size >= 2", file=sys.stderr
        )
        return 2

    from sae_mask_plugin.embedded.model import check_hooks, check_model_available, model_hook_names

    check_model_available(args.model)  # the model name first: it costs no torch

    import torch
    from sae_lens.util import get_special_token_ids

    from sae_mask_plugin.embedded.corpus import load_embedded_corpus
    from sae_mask_plugin.embedded.model import load_model
    from sae_mask_plugin.masking.mask_token import choose_mask_token, measure_mask_tokens, sample_token_batch

    check_hooks([args.hook], model_hook_names(args.model), args.model)
    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    model = load_model(args.model, dtype=getattr(torch, llm_dtype_or_default(args.llm_dtype)))
    print(f"reading {args.n_sequences} contexts of the embedded corpus ...", file=sys.stderr, flush=True)
    tokens = sample_token_batch(
        model, load_embedded_corpus(seed=0), n_sequences=args.n_sequences, context_size=args.context_size
    )
    candidates = measure_mask_tokens(
        model,
        args.hook,
        tokens,
        p=args.p,
        protected_ids=get_special_token_ids(model.tokenizer),
        seed=args.seed,
        show_progress=True,
    )
    chosen = choose_mask_token(candidates)
    print(f"mask-token candidates for {args.model} at {args.hook} ({tokens.numel()} tokens, p = {args.p}):")
    print(f"{'token':<24} {'id':>7} {'special':>8} {'ratio':>8}")
    for candidate in candidates:
        note = (
            "  <- default"
            if candidate == chosen
            else ("  (stops training)" if candidate.norm_ratio > args.threshold else "")
        )
        print(
            f"{candidate.token!r:<24} {candidate.token_id:>7} {'yes' if candidate.special else 'no':>8} "
            f"{candidate.norm_ratio:>7.2f}x{note}"
        )
    return 0
