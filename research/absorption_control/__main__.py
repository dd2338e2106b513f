"""`python -m research.absorption_control --out docs/absorption_control [--tiny | --world WORLD]`: run (or
resume) the control and write `results.json`, the plots and the README into `--out`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from research.absorption_control.config import (
    ControlConfig,
    ControlConfigError,
    tiny_config,
    vocabulary_config,
    vocabulary_wide_config,
)
from sae_mask_plugin.errors import reports_user_errors

PROG = "python -m research.absorption_control"
WORLDS: dict[str, Callable[[], ControlConfig]] = {
    "letters": ControlConfig,
    "vocabulary": vocabulary_config,
    "vocabulary-wide": vocabulary_wide_config,
}
"""The worlds `--world` runs, by name."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/absorption_control"), help="results folder")
    parser.add_argument("--cells", type=Path, default=None, help="per-cell JSON folder (default: OUT/cells)")
    parser.add_argument("--tiny", action="store_true", help="a tiny grid for a smoke test")
    parser.add_argument(
        "--world",
        choices=tuple(WORLDS),
        default="letters",
        help="letters: 4 words per letter (the published control); vocabulary: 50 Zipf-weighted words per letter,"
        " SAEs narrower than the words (absorbing); vocabulary-wide: the same world, one SAE wider than the words",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's own setting, left unchanged)",
    )
    parser.add_argument("--summarise-only", action="store_true", help="summarise the cells on disk, run none")
    parser.add_argument(
        "--shard", default="0/1", help="run only cells i with i %% N == I (I/N), for parallel runs"
    )
    return parser


@reports_user_errors(PROG)
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.tiny and args.world != "letters":
        raise ControlConfigError(f"--tiny runs the letters world's smoke grid; drop --world {args.world}")
    config = tiny_config() if args.tiny else WORLDS[args.world]()
    import torch

    from research.absorption_control.report import summarise, write_outputs
    from research.absorption_control.run import run_cells

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shard_index, shard_count = (int(part) for part in args.shard.split("/"))
    records = run_cells(
        config,
        args.cells or args.out / "cells",
        log=lambda line: print(line, flush=True),
        run_missing=not args.summarise_only,
        shard=(shard_index, shard_count),
    )
    write_outputs(summarise(records, list(config.mechanism_kinds)), asdict(config), args.out)
    print(f"wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
