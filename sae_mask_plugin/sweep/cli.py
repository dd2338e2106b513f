"""`sae-mask sweep RECIPE [--shard i/n] [--archive DIR] [--dry-run] [--launcher local|submitit]`: run a recipe's
grid."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from sae_mask_plugin.errors import CommandParser, SaeMaskUserError, reports_user_errors
from sae_mask_plugin.sweep.partial import PARTIAL_REPORT_MARK

LAUNCHERS = ("local", "submitit")
"""The launchers of `sweep.execute` (a test checks they agree), named here so that `--help` imports no SAELens."""
SLURM_FLAGS = ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min", "array_parallelism")


def parse_override(text: str) -> tuple[str, Any]:
    """`--set KEY=VALUE` of a recipe: a dotted key and a YAML value."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def add_override_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE` (repeatable) into `args.overrides`, a list of (dotted key, YAML value)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help=f"override a recipe key (dotted, YAML value), e.g. {example} (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="sae-mask sweep",
        description=(
            "Expand a recipe (recipes/*.yaml) into runs, group the runs that share one masked LLM pass into one "
            "SAELens multi-SAE job, skip finished runs, train, then run the recipe's evals and report."
        ),
    )
    parser.add_argument("recipe", help="recipe file, or the name of a shipped recipe (e.g. cpu_demo_quick)")
    parser.add_argument("--out", help="output folder (default: sweeps/<recipe name>)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan (runs, tokens, memory); load no model"
    )
    parser.add_argument(
        "--shard", help="run only share i/n of the groups (0 <= i < n), e.g. 0/4 on the first of 4 machines"
    )
    parser.add_argument(
        "--archive",
        help=(
            "folder of small per-group result files (run settings + eval metrics): groups archived there are "
            "done, each group finished is archived, and the report joins them (e.g. a folder kept in git)"
        ),
    )
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="local: run in this process; submitit: submit the shards as a SLURM job array",
    )
    parser.add_argument("--shards", type=int, help="submitit: number of array tasks (default: one per group)")
    parser.add_argument(
        "--cluster",
        choices=("slurm", "local", "debug"),
        help="submitit: executor (default: detected; local/debug run the array on this machine)",
    )
    parser.add_argument("--no-wait", action="store_true", help="submitit: submit and return")
    parser.add_argument("--partition", help="submitit: SLURM partition (default: recipe's slurm.partition)")
    parser.add_argument("--gpus-per-node", type=int, help="submitit: GPUs per array task")
    parser.add_argument("--cpus-per-task", type=int, help="submitit: CPU cores per array task")
    parser.add_argument("--mem-gb", type=float, help="submitit: host memory per array task")
    parser.add_argument("--timeout-min", type=int, help="submitit: time limit per array task in minutes")
    parser.add_argument("--array-parallelism", type=int, help="submitit: most array tasks running at once")
    add_override_argument(parser, "--set runner.device=cuda --set training_tokens=1e6")
    return parser


@reports_user_errors("sae-mask sweep")
def main(argv: list[str]) -> int:
    """Entry point of `sae-mask sweep`."""
    args = build_parser().parse_args(argv)
    from sae_mask_plugin.sweep.shard import Shard, ShardSpecError

    try:  # a bad share answers before the recipe's checks load SAELens
        shard = Shard.parse(args.shard) if args.shard else None
        if shard is not None and args.launcher == "submitit":
            raise ShardSpecError("--shard picks one machine's share; with --launcher submitit use --shards N")
        if args.shards is not None:
            Shard(0, args.shards)
    except ShardSpecError as error:
        raise SaeMaskUserError(str(error)) from None
    from sae_mask_plugin.sweep.recipe import load_recipe

    recipe = load_recipe(args.recipe, dict(args.overrides))  # a bad name or file answers before SAELens loads
    from sae_mask_plugin.embedded.model import check_model_available
    from sae_mask_plugin.sweep.archive import read_archive
    from sae_mask_plugin.sweep.execute import (
        is_finished,
        missing_evals,
        run_shard,
        sae_dir,
        submit_shards,
    )
    from sae_mask_plugin.sweep.plan import format_plan, plan

    groups = plan(recipe)
    out = Path(args.out or Path("sweeps") / recipe.name)
    archived = read_archive(args.archive, recipe.name)
    if args.dry_run:
        unevaluated = {entry.split(": ")[0] for entry in missing_evals(recipe, out, done=list(archived))}
        print(
            format_plan(
                recipe,
                groups,
                shard,
                is_done=lambda run: run.name in archived or is_finished(sae_dir(out, run)),
                is_evaluated=lambda run: run.name not in unevaluated,
            )
        )
        return 0
    if recipe.model_class_name == "HookedTransformer":
        check_model_available(recipe.model_name)
    if args.launcher == "local":
        paths = run_shard(recipe, out, shard, args.archive)
        print(f"{len(paths)} SAEs under {out / 'saes'}" + _report_line(out))
        return 0
    slurm = {name: getattr(args, name) for name in SLURM_FLAGS if getattr(args, name) is not None}
    jobs = submit_shards(recipe, out, args.shards, args.cluster, slurm, args.archive)
    print(
        f"submitted {len(jobs)} array tasks: {', '.join(job.job_id for job in jobs)}; logs in {out / 'submitit'}"
    )
    if args.no_wait:
        print(
            "the task that completes the grid writes the report; to gather by hand: "
            f"sae-mask compare {out / 'saes'} {out / 'evals'} --out {out / 'report'}"
        )
        return 0
    paths = [path for job in jobs for path in job.result()]
    print(f"{len(paths)} SAEs under {out / 'saes'}" + _report_line(out))
    return 0


def _report_line(out: Path) -> str:
    report = out / "report" / "report.md"
    if not report.is_file():
        return ""
    partial = report.read_text().startswith(PARTIAL_REPORT_MARK)
    return f"; report: {report}" + (
        " (partial: some evals have no result yet, see its first line)" if partial else ""
    )
