"""`sae-mask learning-curve RECIPE --out DIR --k K [K ...]`: a recipe's learning curve, to choose its token
budget (`sweep.learning_curve`)."""

from __future__ import annotations

import json

from sae_mask_plugin.errors import CommandParser, reports_user_errors
from sae_mask_plugin.sweep.cli import add_override_argument

PROG = "sae-mask learning-curve"
TOKENS_PER_POINT = 2048
"""The fewest training tokens per evaluated point (one training batch of the smallest recipes)."""


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog=PROG,
        description=(
            "Train a recipe's own jobs (its hook, width, architecture, runner settings and LLM dtype; one seed, "
            "the given p and k) with checkpoints along the way; calibrate every checkpoint to L0 = k on clean "
            "text, run the recipe's evals on it (default core) and measure FVU and L0 on clean unseen text. "
            "Writes OUT/learning_curve.json, .png and .md (a table, and the token count from which each k passes "
            "the report's training gates). Resumable: rerun the same line to continue."
        ),
    )
    parser.add_argument(
        "recipe", help="a recipe file or shipped name (its first grid block gives architecture and width)"
    )
    parser.add_argument("--out", required=True, help="output folder (SAEs, checkpoints, evals and the curve)")
    parser.add_argument("--k", type=int, nargs="+", required=True, help="the k values to train")
    parser.add_argument(
        "--tokens", type=int, default=2_000_000, help="training tokens of each run (default 2,000,000)"
    )
    parser.add_argument(
        "--points", type=int, default=5, help="evaluated token counts, the final one included (default 5)"
    )
    parser.add_argument("--p", type=float, nargs="+", default=[0.0], help="masking p values (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="the runs' seed (default 0)")
    parser.add_argument(
        "--evals", nargs="+", default=["core"], help="evals of the recipe to run at each point (default core)"
    )
    add_override_argument(parser, "--set runner.dead_feature_window=1000")
    return parser


@reports_user_errors(PROG)
def main(argv: list[str]) -> int:
    """Entry point of `sae-mask learning-curve`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.points < 1 or args.tokens < args.points * TOKENS_PER_POINT:
        parser.error(f"--points must be >= 1 and --tokens at least {TOKENS_PER_POINT:,} per point")
    from sae_mask_plugin.sweep.recipe import find_recipe

    find_recipe(args.recipe)  # a bad name or file answers before SAELens loads
    from sae_mask_plugin.sweep.learning_curve import curve_recipe, run_learning_curve

    overrides = dict(args.overrides)
    recipe = curve_recipe(args.recipe, args.tokens, args.points, args.p, args.k, args.seed, overrides)
    unknown = set(args.evals) - set(recipe.evals)
    if unknown:
        parser.error(f"--evals: the recipe runs {', '.join(recipe.evals)}, not {', '.join(sorted(unknown))}")
    if recipe.model_class_name == "HookedTransformer":
        from sae_mask_plugin.embedded.model import check_model_available

        check_model_available(recipe.model_name)
    arguments = {
        "tokens": args.tokens,
        "points": args.points,
        "p": args.p,
        "k": args.k,
        "seed": args.seed,
        "evals": args.evals,
        "overrides": overrides,
    }
    for row in run_learning_curve(recipe, args.out, args.evals, arguments):
        print(json.dumps(row))
    return 0
