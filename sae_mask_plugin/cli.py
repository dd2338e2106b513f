"""The `sae-mask` command line: one subcommand per job, each implemented by the module that owns it.

Every subcommand module exposes `main(argv: list[str]) -> int`; they are imported lazily so that
`sae-mask --help` and bad input answer without loading torch or a model. Expected failures (`SaeMaskUserError`)
end as one line on stderr and exit status 2; `--debug` shows their traceback (see `sae_mask_plugin.errors`).
"""

from __future__ import annotations

import importlib
import os
import sys

from sae_mask_plugin import __version__
from sae_mask_plugin.errors import DEBUG_ENV_VAR, TrainingInterrupted, debug_enabled

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("sae_mask_plugin.info", "versions, the embedded model cache and whether it is built"),
    "mask-tokens": (
        "sae_mask_plugin.masking.cli",
        "rank candidate mask tokens by their activation-norm ratio",
    ),
    "train": (
        "sae_mask_plugin.training.cli",
        "train an SAE with SAELens, masked or not (every SAELens flag)",
    ),
    "calibrate": (
        "sae_mask_plugin.calibration.cli",
        "set saved BatchTopK SAEs' thresholds so their clean-text L0 is k",
    ),
    "eval": ("sae_mask_plugin.evals.cli", "absorption, sparse-probing and OOD-probing evals of saved SAEs"),
    "compare": ("sae_mask_plugin.compare", "baseline-vs-masked report from trained and evaluated SAEs"),
    "demo": (
        "sae_mask_plugin.demo",
        "train baseline + masked SAEs on the embedded default, evaluate, report",
    ),
    "sweep": ("sae_mask_plugin.sweep", "run a recipe grid (p x k x architecture), optionally sharded"),
    "learning-curve": (
        "sae_mask_plugin.sweep.learning_curve_cli",
        "a recipe's metrics against training tokens, to choose its token budget",
    ),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: sae-mask [--version] <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += [
        "",
        "`sae-mask <command> --help` documents each command's options; `--debug` (anywhere) shows the traceback",
        "of an expected error (bad input, unreachable model) instead of its one-line message.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch `sae-mask <command> ...` to the command's module."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        args.remove("--debug")
        os.environ[DEBUG_ENV_VAR] = "1"
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if args[0] == "--version":
        print(f"sae-mask {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        print(f"sae-mask: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(SUBCOMMANDS[command][0])
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print(f"sae-mask {command}: interrupted", file=sys.stderr)
        return 130
    except TrainingInterrupted as interrupted:
        if debug_enabled():
            raise
        print(f"sae-mask {command}: {interrupted}", file=sys.stderr)
        return 128 + interrupted.signum


if __name__ == "__main__":
    sys.exit(main())
