"""`sae-mask compare RUN_DIR... --out DIR`: the baseline-vs-masked report from trained and evaluated SAEs."""

from __future__ import annotations

from sae_mask_plugin.errors import CommandParser, reports_user_errors


@reports_user_errors("sae-mask compare")
def main(argv: list[str]) -> int:
    parser = CommandParser(
        prog="sae-mask compare",
        description=(
            "Build report.md, results.json and PNG plots comparing baseline and masked SAEs. Each RUN_DIR is "
            "searched for saved SAE folders (trained by sae-mask train, a sweep, the Python API or plain "
            "SAELens) and for the results `sae-mask eval` wrote. Baseline vs masked is read from each SAE's "
            "masking metadata (none = baseline); masked runs pair with the baseline of the same seed and shape."
        ),
    )
    parser.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="folders holding SAEs and eval results"
    )
    parser.add_argument("--out", required=True, help="folder for report.md, results.json and plots")
    parser.add_argument(
        "--recipe",
        default=None,
        help="a recipe (file or shipped name) whose training_gate, absorption_letter_set and study_reference the "
        "report applies",
    )
    parser.add_argument(
        "--study-reference",
        default=None,
        metavar="NAME",
        help="a published study shipped with the package (e.g. smollm2_study_v2) whose 95 %% intervals each "
        "difference is placed against (overrides the recipe's)",
    )
    args = parser.parse_args(argv)
    rules: dict = {}
    if args.recipe is not None:  # a bad recipe or study name answers before the runs are read
        from sae_mask_plugin.sweep.recipe import load_recipe

        rules = load_recipe(args.recipe).report_rules()
    if args.study_reference is not None:
        from sae_mask_plugin.report.study_reference import load_study_reference

        rules["study_reference"] = load_study_reference(args.study_reference)
    from sae_mask_plugin.report.collect import collect_runs

    # Missing or foreign folders answer before the report's plotting loads.
    records = collect_runs(args.run_dirs)
    from sae_mask_plugin.report.build import build_report

    files = build_report(records, args.out, **rules)
    print(f"{len(records)} SAEs compared; report: {files.report}")
    return 0
