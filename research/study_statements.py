"""Regenerate the study's statements from a report's results.json: the generated blocks of markdown files (the
study README's tables, README's "What we found" bullets), or check that they are current.

    python -m research.study_statements docs/smollm2_study/first_edition/results.json \
        --update docs/smollm2_study/first_edition/README.md
    python -m research.study_statements docs/smollm2_study/first_edition/results.json \
        --check docs/smollm2_study/first_edition/README.md README.md
    python -m research.study_statements docs/smollm2_study/first_edition/results.json --print what-we-found
    python -m research.study_statements docs/smollm2_study/first_edition/results.json \
        --rebuild-report docs/smollm2_study/first_edition \
        --notice "First edition, superseded: ..."
    python -m research.study_statements docs/smollm2_study/absorption_arm/results.json --arm \
        --update docs/smollm2_study/absorption_arm/README.md docs/smollm2_study/README.md README.md

A block is the text between `<!-- begin generated: NAME -->` and `<!-- end generated: NAME -->`; every number in
it is recomputed from the results' runs (`research.study_pages`). Blocks other modules generate (the
study page's shard times and masked-latent counts) are left as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from research.study_pages import (
    arm_blocks,
    block_names,
    fill_blocks,
    generated_blocks,
    records_from_results,
    rules_from_results,
)
from sae_mask_plugin.files import write_text_atomic
from sae_mask_plugin.report.build import build_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a report's results.json")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--update", type=Path, nargs="+", metavar="MARKDOWN", help="rewrite their blocks")
    action.add_argument(
        "--check", type=Path, nargs="+", metavar="MARKDOWN", help="fail when a block is stale"
    )
    action.add_argument("--print", dest="block", help="print one block (study-tables or what-we-found)")
    action.add_argument(
        "--rebuild-report",
        type=Path,
        metavar="DIR",
        help="rewrite report.md, results.json and plots from the runs",
    )
    parser.add_argument(
        "--notice", action="append", default=[], help="--rebuild-report: a first line (repeatable)"
    )
    parser.add_argument(
        "--arm", action="store_true", help="the results are an absorption arm's: fill the arm-* blocks"
    )
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    if args.rebuild_report:
        files = build_report(
            records_from_results(results),
            args.rebuild_report,
            notices=args.notice,
            **rules_from_results(results),
        )
        print(f"report: {files.report}")
        return 0
    blocks = (arm_blocks if args.arm else generated_blocks)(results)
    if args.block:
        if args.block not in blocks:
            parser.error(f"no block {args.block!r}; known: {', '.join(blocks)}")
        print(blocks[args.block])
        return 0
    stale = []
    for path in args.update or args.check:
        text = path.read_text()
        if not set(block_names(text)) & set(blocks):
            parser.error(f"{path} has none of the generated blocks {', '.join(blocks)}")
        filled = fill_blocks(text, blocks, keep_others=True)
        if filled != text:
            stale.append(str(path))
            if args.update:
                write_text_atomic(path, filled)
    if args.check and stale:
        print(f"stale generated blocks in {', '.join(stale)}: rerun with --update", file=sys.stderr)
        return 1
    print(
        f"{'updated' if args.update else 'current'}: {', '.join(stale if args.update else map(str, args.check))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
