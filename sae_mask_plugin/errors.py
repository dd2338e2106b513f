"""Expected, user-caused failures (bad input, an unreachable model, a refused folder) and how commands report them.

Every such failure raises a subclass of `SaeMaskUserError`. A `sae-mask` command prints it as one line,
`sae-mask <command>: message`, on stderr and exits with status 2; any other exception is a bug and keeps its
traceback. `sae-mask --debug ...` (or `SAE_MASK_DEBUG=1`) shows the traceback of user errors too. This module
imports nothing heavy, so the command line can handle errors before torch or SAELens load.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

DEBUG_ENV_VAR = "SAE_MASK_DEBUG"
USER_ERROR_STATUS = 2


class CommandParser(argparse.ArgumentParser):
    """An `argparse` parser whose errors are one line, as every other error of the command line:
    `prog: error: message (see prog --help)`, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USER_ERROR_STATUS, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class SaeMaskUserError(Exception):
    """An expected failure caused by the input or the environment, reported without a traceback."""


class TrainingInterrupted(Exception):
    """Training stopped on a signal; `checkpoint` is the complete checkpoint written (None when nothing was).
    A `sae-mask` command prints its message (which names the checkpoint) and exits with 128 + the signal number."""

    def __init__(self, message: str, signum: int, checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.signum = signum
        self.checkpoint = checkpoint


def debug_enabled() -> bool:
    """Whether user errors show their traceback (`sae-mask --debug` sets `$SAE_MASK_DEBUG`)."""
    return os.environ.get(DEBUG_ENV_VAR, "") not in {"", "0"}


def reports_user_errors(prog: str) -> Callable[[Callable[[list[str]], int]], Callable[[list[str]], int]]:
    """Decorate a command's `main(argv) -> int`: a `SaeMaskUserError` becomes `prog: message` on stderr and
    exit status 2 (re-raised when `debug_enabled()`)."""

    def decorate(main: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        @functools.wraps(main)
        def run(argv: list[str]) -> int:
            try:
                return main(argv)
            except SaeMaskUserError as error:
                if debug_enabled():
                    raise
                print(f"{prog}: {error}", file=sys.stderr)
                return USER_ERROR_STATUS

        return run

    return decorate
