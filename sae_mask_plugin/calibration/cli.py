"""`sae-mask calibrate`: set saved BatchTopK-family SAEs' thresholds so their clean-text L0 is k (in place).

    sae-mask calibrate --sae runs/baseline --sae runs/masked            # target L0 = each SAE's training k
    sae-mask calibrate --sae runs/masked --l0 40 --tokens 65536

Every folder is checked before the model is loaded; one clean-activation pass per model and hook serves all SAEs
there; each SAE folder is rewritten atomically. Calibrating again is idempotent (the learned threshold is kept).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from sae_mask_plugin.calibration.settings import (
    DEFAULT_CALIBRATION_TOKENS,
    DEFAULT_CONTEXT_SIZE,
    CalibrationError,
    check_saved_sae,
)
from sae_mask_plugin.errors import CommandParser, reports_user_errors
from sae_mask_plugin.llm_dtype import LLM_DTYPES, check_same_llm_dtype, recorded_llm_dtype
from sae_mask_plugin.sae_metadata import trained_positions


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="sae-mask calibrate",
        description="Calibrate the global threshold of saved (Matryoshka) BatchTopK SAEs on clean held-out text "
        "(the embedded corpus's calibration split), so that their mean L0 there equals k (or --l0). "
        "The SAE folders are rewritten in place, atomically; stock SAELens still loads them.",
    )
    parser.add_argument(
        "--sae", action="append", required=True, metavar="PATH", help="SAE folder (repeatable)"
    )
    parser.add_argument(
        "--l0", type=float, default=None, help="target mean L0 (default: each SAE's training k)"
    )
    parser.add_argument(
        "--tokens",
        type=int,
        default=DEFAULT_CALIBRATION_TOKENS,
        help="clean calibration tokens (default %(default)s)",
    )
    parser.add_argument(
        "--context-size", type=int, default=DEFAULT_CONTEXT_SIZE, help="window length (default %(default)s)"
    )
    parser.add_argument("--model", default=None, help="model name (default: each SAE's metadata.model_name)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--llm_dtype",
        choices=LLM_DTYPES,
        default=None,
        help="dtype the LLM runs in (default: the one each SAE was trained with; another one is refused)",
    )
    return parser


@reports_user_errors("sae-mask calibrate")
def main(argv: list[str]) -> int:
    """Run `sae-mask calibrate`; 0 on success, 2 on bad input."""
    args = build_parser().parse_args(argv)
    if args.tokens < 1 or args.context_size < 2:
        raise CalibrationError("--tokens must be >= 1 and --context-size >= 2")
    # SAEs share clean activations when they share model, LLM dtype, hook and the window positions they trained on
    groups: dict[tuple[str, str, str, tuple[int | None, ...]], list[Path]] = defaultdict(list)
    for path in args.sae:
        cfg, _ = check_saved_sae(path, args.l0)
        metadata = cfg.get("metadata") or {}
        llm_dtype = recorded_llm_dtype(metadata)
        if args.llm_dtype is not None:
            check_same_llm_dtype(str(path), llm_dtype, args.llm_dtype)
        key = (args.model or metadata.get("model_name"), llm_dtype, metadata.get("hook_name"))
        groups[(*key, trained_positions(metadata))].append(Path(path))

    import torch

    from sae_mask_plugin.calibration.threshold import calibrate_saved_sae, calibration_activations
    from sae_mask_plugin.embedded.model import load_model

    for (model_name, llm_dtype, hook_name, seqpos_slice), sae_dirs in groups.items():
        model = load_model(model_name, device=args.device, dtype=getattr(torch, llm_dtype))
        activations = calibration_activations(model, hook_name, args.tokens, args.context_size, seqpos_slice)
        for sae_dir in sae_dirs:
            result = calibrate_saved_sae(sae_dir, activations, args.l0, args.context_size, seqpos_slice)
            print(
                f"{sae_dir}: threshold {result.learned_threshold:.4g} -> {result.calibrated_threshold:.4g}, "
                f"clean L0 {result.clean_l0_learned:.1f} -> {result.clean_l0_calibrated:.1f} "
                f"({result.calibration_tokens} tokens)"
            )
    return 0
