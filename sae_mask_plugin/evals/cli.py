"""`sae-mask eval`: evaluate saved SAE folders with the absorption, sparse-probing, OOD-probing and core evals
(offline), and SAEBench's SCR and TPP (hub datasets, hub models).

    sae-mask eval --sae runs/baseline --sae runs/masked --evals absorption,sparse_probing,ood --out results/

Input is checked before any model is loaded; done SAE/eval pairs are skipped unless `--force`; results are
written atomically, one JSON per SAE and eval, in SAEBench's layout (see `evals.runner`).
"""

from __future__ import annotations

import argparse
import sys

from sae_mask_plugin.errors import CommandParser, SaeMaskUserError, reports_user_errors
from sae_mask_plugin.llm_dtype import LLM_DTYPES

EVAL_NAMES = ("absorption", "sparse_probing", "ood", "core", "scr", "tpp")
OFFLINE_EVAL_NAMES = ("absorption", "sparse_probing", "ood", "core")
PRESETS = ("cpu", "full")
"""The evals (all, and those that run offline: the default), and size presets of `evals.runner`, named here so
that `--help` answers without importing them (a test checks they agree)."""


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="sae-mask eval",
        description="Evaluate saved SAEs (SAELens or sae-mask folders) offline, with SAEBench-format output.",
    )
    parser.add_argument(
        "--sae", action="append", required=True, metavar="PATH", help="SAE folder (repeatable)"
    )
    parser.add_argument(
        "--evals",
        type=_comma_list,
        default=list(OFFLINE_EVAL_NAMES),
        help=f"comma-separated evals among {', '.join(EVAL_NAMES)} (default: {', '.join(OFFLINE_EVAL_NAMES)}; "
        "scr and tpp read their datasets from the Hugging Face hub and run on hub models)",
    )
    parser.add_argument("--out", required=True, help="output folder (results, cache and summary)")
    parser.add_argument("--model", default=None, help="model name (default: each SAE's metadata.model_name)")
    parser.add_argument(
        "--preset", choices=PRESETS, default="cpu", help="cpu: small documented sizes; full: SAEBench's sizes"
    )
    parser.add_argument("--force", action="store_true", help="recompute SAE/eval pairs that are already done")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--ood-tasks", type=_comma_list, default=None, help="comma-separated OOD tasks")
    parser.add_argument(
        "--datasets", type=_comma_list, default=None, help="comma-separated sparse-probing datasets"
    )
    parser.add_argument("--cache-dir", default=None, help="activation and probe cache (default: OUT/cache)")
    parser.add_argument(
        "--llm_dtype",
        choices=LLM_DTYPES,
        default=None,
        help="dtype the LLM runs in (default: the one each SAE was trained with, from its metadata; another "
        "one is refused)",
    )
    return parser


@reports_user_errors("sae-mask eval")
def main(argv: list[str]) -> int:
    """Run `sae-mask eval`; 0 when every SAE/eval pair is done or skipped, 1 when one failed, 2 on bad input."""
    args = build_parser().parse_args(argv)
    unknown = [name for name in args.evals if name not in EVAL_NAMES]
    if unknown:
        raise SaeMaskUserError(f"unknown eval(s) {', '.join(unknown)}; choose among {', '.join(EVAL_NAMES)}")
    from sae_mask_plugin.evals.common import SUMMARY_FILENAME, read_sae_sources

    for source in read_sae_sources(
        args.sae, args.model
    ):  # bad folders or dtypes answer before SAEBench loads
        source.eval_llm_dtype(args.llm_dtype)
    from sae_mask_plugin.evals.runner import evaluate_saes

    summary = evaluate_saes(
        args.sae,
        args.evals,
        args.out,
        preset=args.preset,
        force=args.force,
        model_name=args.model,
        device=args.device,
        ood_tasks=args.ood_tasks,
        sparse_probing_datasets=args.datasets,
        cache_dir=args.cache_dir,
        llm_dtype=args.llm_dtype,
    )
    failed = [
        f"{name}/{eval_name}"
        for name, entry in summary.items()
        for eval_name, record in entry["evals"].items()
        if record["status"] == "failed"
    ]
    print(f"results in {args.out} (summary: {SUMMARY_FILENAME})")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
