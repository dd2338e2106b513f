"""`sae-mask demo`: the main job on the offline embedded default, end to end.

`--quick` (default) runs the `cpu_demo_quick` recipe, the SmolLM2 study's setting at demo size: three Matryoshka
BatchTopK SAEs (4,096 latents, 400,000 tokens each) on SmolLM2-135M's residual stream after block 6, baselines
(p = 0) at k 16 and 32 and a masked SAE (p = 0.3) at k 32, one seed, the same data order and initialisation; the
SAEs of one p train from one LLM pass. Every SAE's threshold is calibrated on clean held-out text to L0 = k; the
four evals (core metrics on clean held-out text, first-letter absorption, sparse probing, OOD probing) run on all
three; the report compares baseline and masked at matched L0 and places each difference beside the published
study's 95 % interval for the same cell. `--full` runs `cpu_demo_full`: 36 SAEs (3 seeds, p in {0, 0.1, 0.3, 0.5}, k in {16, 32, 64}; one masked
LLM pass per p and seed feeds its three SAEs). Both recipes are in `recipes/` and document every default.

An interrupted demo resumes: finished SAEs and evals in the output folder are not redone. An existing folder that
is not a previous demo run is refused unless `--force`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sae_mask_plugin.errors import CommandParser, SaeMaskUserError, reports_user_errors
from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.llm_dtype import LLM_DTYPES

if TYPE_CHECKING:
    from sae_mask_plugin.sweep.recipe import Recipe

DEMO_RECIPES: dict[str, str] = {"quick": "cpu_demo_quick", "full": "cpu_demo_full"}
MARKER_FILENAME = "sae_mask_demo.json"
DEFAULT_OUT = "sae_mask_demo"


class DemoFolderError(SaeMaskUserError, ValueError):
    """The output folder holds something other than a previous run of this demo."""


def demo_version(recipe_name: str, overrides: Mapping[str, Any] | None) -> str:
    """A fingerprint of what a demo run trains: its recipe file's text and the overrides (12 hex digits)."""
    from sae_mask_plugin.sweep.recipe import find_recipe

    text = find_recipe(recipe_name).read_text() + json.dumps(
        dict(overrides or {}), sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_output_folder(out: Path, recipe_name: str, force: bool, version: str | None = None) -> None:
    """Raise `DemoFolderError` unless `out` is new or empty, or a previous run of the same demo recipe and
    `version` (`demo_version`; resumed).

    Anything else (other files, a demo of the other mode, or one of another version, whose finished SAEs would be
    reused beside new ones) is refused unless `force`; `force` never deletes anything, it only allows writing
    beside what is there.
    """
    if out.exists() and not out.is_dir():
        raise DemoFolderError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        marker = out / MARKER_FILENAME
        if not marker.is_file():
            raise DemoFolderError(
                f"{out} exists and is not a previous run of the demo; choose another --out or pass --force"
            )
        previous = json.loads(marker.read_text())
        if previous.get("recipe") != recipe_name:
            raise DemoFolderError(
                f"{out} holds a {previous.get('recipe')!r} demo run, not {recipe_name!r}; choose another --out or "
                "pass --force"
            )
        if version is not None and previous.get("version") != version:
            raise DemoFolderError(
                f"{out} holds a run of another version of the {recipe_name!r} demo (its recipe or settings have "
                "changed since), whose SAEs this run would mix with new ones; choose another --out or pass --force"
            )


def prepare_output_folder(out: Path, recipe_name: str, force: bool, version: str | None = None) -> None:
    """Claim `out` for the demo (see `check_output_folder`): create it and mark it as a run of `recipe_name` at
    `version`."""
    check_output_folder(out, recipe_name, force, version)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_FILENAME
    if not marker.is_file():
        write_json_atomic(
            marker,
            {"recipe": recipe_name, "version": version, "started": time.strftime("%Y-%m-%dT%H:%M:%S")},
        )


def run_demo(
    mode: str = "quick",
    out: str | Path = DEFAULT_OUT,
    force: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train, evaluate and report; returns the path of `report.md`.

    `overrides` sets dotted recipe keys (e.g. `{"training_tokens": 50_000}`); the recipe is validated before
    the output folder is touched or any model is loaded.
    """
    if mode not in DEMO_RECIPES:
        raise ValueError(f"mode must be one of {', '.join(DEMO_RECIPES)}; got {mode!r}")
    out = Path(out)
    version = demo_version(DEMO_RECIPES[mode], overrides)
    check_output_folder(out, DEMO_RECIPES[mode], force, version)  # before the recipe's checks load SAELens

    from sae_mask_plugin.embedded.model import check_model_available
    from sae_mask_plugin.sweep import load_recipe, run_recipe
    from sae_mask_plugin.training.config import MixingBufferWarning

    recipe = load_recipe(DEMO_RECIPES[mode], overrides)
    check_model_available(recipe.model_name)  # a missing model answers before the corpus is built
    prepare_output_folder(out, recipe.name, force, version)
    print(describe_start(recipe, out), flush=True)
    with warnings.catch_warnings():  # the start lines say how the demo mixes, and why (`describe_start`)
        warnings.simplefilter("ignore", MixingBufferWarning)
        run_recipe(recipe, out)
    report = out / "report" / "report.md"
    if not report.is_file():
        raise RuntimeError(
            f"the demo finished without writing {report}; see the eval errors under {out}/evals"
        )
    return report


def describe_start(recipe: Recipe, out: Path) -> str:
    """What the demo is about to do: output folder, model, hook, mask token, runs and the state of the caches."""
    from sae_mask_plugin.info import corpus_state, model_state
    from sae_mask_plugin.sweep.plan import plan
    from sae_mask_plugin.sweep.recipe import EMBEDDED_DATASET
    from sae_mask_plugin.training.config import mixing_buffer_notice, mixing_buffer_summary

    corpus = corpus_state() if recipe.dataset == EMBEDDED_DATASET else recipe.dataset
    mask_tokens = sorted({str(run.masking.mask_token) for run in recipe.runs if run.masking.is_active})
    mask_token = (
        "chosen by measurement when training starts (printed then, with its norm ratio)"
        if mask_tokens == ["None"]
        else ", ".join(mask_tokens) or "none (baseline only)"
    )
    names = [run.name for run in recipe.runs]
    rows = {
        "output folder": str(out.resolve()),
        "model": model_state(recipe.model_name),
        "hook": recipe.hook_name,
        "LLM dtype": f"{recipe.llm_dtype} ({recipe.llm_dtype_reason})",
        "data": f"{corpus}, {recipe.training_tokens:,} training tokens per SAE",
        "SAEs": f"{len(names)}: {', '.join(names[:4])}" + (", ..." if len(names) > 4 else ""),
        "mask token": mask_token,
        "then": f"evals ({', '.join(recipe.evals) or 'none'}) and the report",
    }
    runner = plan(recipe)[0].runner_config(recipe)
    if mixing_buffer_notice(runner):
        rows["mixing"] = (
            f"{mixing_buffer_summary(runner)}, as in the published study the report is read against (docs/recipes.md)"
        )
    lines = [f"sae-mask demo: recipe {recipe.name} ({recipe.description})"]
    lines += [f"  {key:<14} {value}" for key, value in rows.items()]
    if emulated := recipe.emulated_bf16_notice():
        lines.append(emulated)
    return "\n".join(lines)


def report_headline(report: Path) -> str:
    """The lines of report.md's `## Headline` section, else its first table (empty when it has neither)."""
    lines = report.read_text().splitlines()
    if "## Headline" in lines:
        section = lines[lines.index("## Headline") + 1 :]
        end = next((i for i, line in enumerate(section) if line.startswith("## ")), len(section))
        return "\n".join(section[:end]).strip()
    table_start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if table_start is None:
        return ""
    table_end = next(
        (i for i, line in enumerate(lines[table_start:], table_start) if not line.startswith("|")), len(lines)
    )
    return "\n".join(lines[table_start:table_end])


@reports_user_errors("sae-mask demo")
def main(argv: list[str]) -> int:
    from sae_mask_plugin.sweep.cli import add_override_argument

    parser = CommandParser(
        prog="sae-mask demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="3 SAEs: baselines at k 16/32, p 0.3 at k 32, one seed (default)",
    )
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="36 SAEs: k 16/32/64, p in {0, 0.1, 0.3, 0.5}, 3 seeds",
    )
    parser.set_defaults(mode="quick")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    parser.add_argument(
        "--force", action="store_true", help="write into an existing folder that is not a demo run"
    )
    add_override_argument(parser, "--set training_tokens=50000")
    parser.add_argument(
        "--llm_dtype",
        choices=LLM_DTYPES,
        default=None,
        help="dtype the LLM runs in (default: bfloat16 where the CPU computes it natively, else float32; "
        "see `sae-mask info`)",
    )
    args = parser.parse_args(argv)
    overrides = dict(args.overrides) | ({"llm_dtype": args.llm_dtype} if args.llm_dtype else {})
    started = time.perf_counter()
    report = run_demo(args.mode, args.out, args.force, overrides)
    minutes = (time.perf_counter() - started) / 60
    print(f"sae-mask demo ({args.mode}) finished in {minutes:.1f} min; report: {report.resolve()}")
    headline = report_headline(report)
    if headline:
        print(headline)
    return 0
