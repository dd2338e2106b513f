"""Fidelity of a bfloat16 LLM pass on the embedded default, written to `docs/bf16/fidelity.json`.

On clean held-out text (the corpus's calibration split, texts the threshold calibration does not read): relative
error of bfloat16 vs float32 activations at the hook and next-token loss of both; then one short SAE trained on
float32 and one on bfloat16 activations (same seed, data and settings, thresholds calibrated to L0 = k on their
own dtype), each scored (FVU, L0) on activations of both dtypes. Targets: FVU differs by < 0.005 and calibrated
L0 by < 2 % between the dtypes.

    python scripts/bf16_fidelity.py [--training-tokens 200000] [--work outputs/bf16_fidelity]

Trained SAEs are kept under `--work` and re-used, so an interrupted run resumes after its last finished SAE.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE

from sae_mask_plugin.calibration.threshold import fvu_and_l0
from sae_mask_plugin.clean_activations import clean_token_activations, packed_windows
from sae_mask_plugin.embedded.corpus import load_calibration_texts, load_embedded_corpus
from sae_mask_plugin.embedded.model import DEFAULT_HOOK, load_embedded_model
from sae_mask_plugin.evals.common import read_sae_source
from sae_mask_plugin.evals.dtype_fidelity import mean_next_token_loss, relative_error
from sae_mask_plugin.files import write_json_atomic, write_text_atomic
from sae_mask_plugin.llm_dtype import LLM_DTYPES, NATIVE_BF16_FLAGS, cpu_flags, default_llm_dtype
from sae_mask_plugin.training.defaults import RUNNER_DEFAULTS, make_runner_config, train_sae

FVU_TARGET = 0.005
L0_TARGET = 0.02
FIRST_HELD_OUT_TEXT = 1250
"""Held-out texts start here in the calibration split: threshold calibration reads its first ~500 texts."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--training-tokens", type=int, default=200_000)
    parser.add_argument("--eval-tokens", type=int, default=16_384)
    parser.add_argument("--ce-windows", type=int, default=32)
    parser.add_argument("--calibration-tokens", type=int, default=16_384)
    parser.add_argument("--d-sae", type=int, default=2048)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--work", default="outputs/bf16_fidelity")
    parser.add_argument("--out", default="docs/bf16/fidelity.json")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only recompute the verdicts and the .md of an existing --out",
    )
    args = parser.parse_args()
    if args.render_only:
        results = json.loads(Path(args.out).read_text())
        results["met"] = targets_met(results["saes_by_training_dtype"])
        write_json_atomic(args.out, results)
        write_text_atomic(Path(args.out).with_suffix(".md"), render(results))
        return
    torch.set_num_threads(1)
    work = Path(args.work)
    started = time.perf_counter()

    models = {dtype: load_embedded_model(dtype=getattr(torch, dtype)) for dtype in LLM_DTYPES}
    texts = load_calibration_texts(show_progress=False)[FIRST_HELD_OUT_TEXT:]
    seqpos_slice = RUNNER_DEFAULTS["seqpos_slice"]
    context = RUNNER_DEFAULTS["context_size"]
    activations = {
        dtype: clean_token_activations(
            model, DEFAULT_HOOK, texts, args.eval_tokens, context, seqpos_slice, show_progress=False
        )
        for dtype, model in models.items()
    }
    windows = packed_windows(models["float32"], texts, context, args.ce_windows)
    next_token_loss = {dtype: mean_next_token_loss(model, windows) for dtype, model in models.items()}

    results_head = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "native_bf16_flags": sorted(cpu_flags() & set(NATIVE_BF16_FLAGS)),
            "default_llm_dtype": default_llm_dtype().describe(),
            "torch": torch.__version__,
        },
        "settings": {
            "hook": DEFAULT_HOOK,
            "held_out": f"calibration-split texts from index {FIRST_HELD_OUT_TEXT} (not read by calibration)",
            "eval_tokens": args.eval_tokens,
            "ce_windows": args.ce_windows,
            "context_size": context,
            "seqpos_slice": list(seqpos_slice),
            "sae": f"matryoshka_batchtopk d_sae {args.d_sae}, k {args.k}",
            "training_tokens": args.training_tokens,
            "calibration_tokens": args.calibration_tokens,
        },
        "activation_relative_error": relative_error(activations["float32"], activations["bfloat16"]),
        "activation_norm_median": float(activations["float32"].norm(dim=-1).median()),
        "next_token_loss": next_token_loss,
        "next_token_loss_difference": next_token_loss["bfloat16"] - next_token_loss["float32"],
    }
    saes: dict[str, dict[str, Any]] = {}
    write_results(args, results_head, saes, started)
    corpus = load_embedded_corpus(seed=0, show_progress=False)
    for trained in LLM_DTYPES:
        folder = work / f"sae_{trained}"
        if not (folder / "cfg.json").is_file():
            cfg = make_runner_config(
                sae={"d_sae": args.d_sae, "k": args.k},
                llm_dtype=trained,
                training_tokens=args.training_tokens,
                calibrate_threshold=True,
                calibration_tokens=args.calibration_tokens,
                output_path=str(folder),
                checkpoint_path=str(work / "checkpoints"),
            )
            train_sae(cfg, override_model=models[trained], override_dataset=corpus)
        sae = SAE.load_from_disk(str(folder), device="cpu", dtype="float32")
        scores = {on: fvu_and_l0(sae, activations[on]) for on in LLM_DTYPES}
        fvu = {on: score[0] for on, score in scores.items()}
        l0 = {on: score[1] for on, score in scores.items()}
        saes[trained] = {
            "recorded_llm_dtype": read_sae_source(folder).llm_dtype,
            "fvu": fvu,
            "l0": l0,
            "fvu_difference": abs(fvu["bfloat16"] - fvu["float32"]),
            "l0_relative_difference": abs(l0["bfloat16"] - l0["float32"]) / l0["float32"],
        }

        write_results(args, results_head, saes, started)


def write_results(
    args: argparse.Namespace, head: dict[str, object], saes: dict[str, dict[str, Any]], started: float
) -> None:
    """Write what is measured so far (the SAEs trained so far) to `args.out`, atomically."""
    results = {
        **head,
        "saes_by_training_dtype": saes,
        "fvu_own_dtype": {dtype: entry["fvu"][dtype] for dtype, entry in saes.items()},
        "l0_own_dtype": {dtype: entry["l0"][dtype] for dtype, entry in saes.items()},
        "targets": {"fvu_difference_below": FVU_TARGET, "l0_relative_difference_below": L0_TARGET},
        "met": targets_met(saes),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(args.out, results)
    write_text_atomic(Path(args.out).with_suffix(".md"), render(results))
    print(f"wrote {args.out} ({len(saes)} of {len(LLM_DTYPES)} SAEs)", flush=True)


def targets_met(saes: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Whether every SAE measured so far is within the FVU and L0 targets on the two dtypes (None: none yet)."""
    if not saes:
        return None
    return {
        "fvu": all(entry["fvu_difference"] < FVU_TARGET for entry in saes.values()),
        "l0": all(entry["l0_relative_difference"] < L0_TARGET for entry in saes.values()),
        "saes_measured": list(saes),
    }


def render(results: dict[str, Any]) -> str:
    """The measured numbers of `results` as Markdown sentences and a table (docs/bf16/fidelity.md)."""
    settings, error, loss = (
        results["settings"],
        results["activation_relative_error"],
        results["next_token_loss"],
    )
    lines = [
        "<!-- generated by scripts/bf16_fidelity.py from fidelity.json; do not edit -->",
        f"Measured on {results['machine']['processor']} (native bf16 flags: "
        f"{', '.join(results['machine']['native_bf16_flags']) or 'none'}), torch {results['machine']['torch']}.",
        "",
        f"On {settings['eval_tokens']:,} held-out tokens at `{settings['hook']}`, bfloat16 activations differ from "
        f"float32 by {error['mean']:.2%} per token on average (median {error['median']:.2%}, 99th percentile "
        f"{error['p99']:.2%}; {error['overall']:.2%} over all tokens at once). Next-token loss over "
        f"{settings['ce_windows']} windows of {settings['context_size']} tokens: float32 "
        f"{loss['float32']:.4f}, bfloat16 {loss['bfloat16']:.4f} ({results['next_token_loss_difference']:+.4f}).",
    ]
    saes = results["saes_by_training_dtype"]
    if saes:
        lines += [
            "",
            f"SAEs ({settings['sae']}, {settings['training_tokens']:,} training tokens: a short run, thresholds "
            f"calibrated to L0 = k on {settings['calibration_tokens']:,} clean tokens of their own dtype), scored on "
            "the held-out activations of each dtype:",
            "",
            "| SAE trained on | FVU on float32 | FVU on bfloat16 | FVU difference | L0 on float32 | L0 on bfloat16 "
            "| L0 difference |",
            "|---|---|---|---|---|---|---|",
        ]
        for trained, entry in saes.items():
            fvu, l0 = entry["fvu"], entry["l0"]
            lines.append(
                f"| {trained} | {fvu['float32']:.4f} | {fvu['bfloat16']:.4f} | {entry['fvu_difference']:.4f} | "
                f"{l0['float32']:.2f} | {l0['bfloat16']:.2f} | {entry['l0_relative_difference']:.2%} |"
            )
    if results["met"] is not None:
        targets = results["targets"]
        verdict = {True: "met", False: "missed"}
        measured = results["met"]["saes_measured"]
        missing = [dtype for dtype in LLM_DTYPES if dtype not in measured]
        lines += [
            "",
            f"Targets, on the SAE(s) trained on {' and '.join(measured)}: FVU difference < "
            f"{targets['fvu_difference_below']} {verdict[results['met']['fvu']]}; calibrated L0 difference < "
            f"{targets['l0_relative_difference_below']:.0%} {verdict[results['met']['l0']]}."
            + (f" Not measured: the SAE trained on {' and '.join(missing)} activations." if missing else ""),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
