"""`sae-mask train`: SAELens's training command line over the masked runner config (every SAELens flag and every
masking flag; see `training.flags`).

The arguments are checked, and `--help` printed, from `flags.json`, a snapshot of that parser's flags, so bad
input and `--help` answer before SAELens or torch load; SAELens's own parser then builds the config. When the
installed SAELens or simple_parsing is not the one the snapshot was taken with, SAELens's parser does it all.
"""

from __future__ import annotations

import argparse
import json
import sys
from argparse import SUPPRESS, ArgumentError
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simple_parsing import SimpleHelpFormatter
from simple_parsing.helpers.custom_actions import BooleanOptionalAction
from simple_parsing.utils import str2bool

from sae_mask_plugin.embedded.model import check_model_available, check_model_name
from sae_mask_plugin.errors import USER_ERROR_STATUS, CommandParser, debug_enabled, reports_user_errors
from sae_mask_plugin.llm_dtype import check_llm_dtype
from sae_mask_plugin.masking.config import MaskingConfig, parse_mask_token
from sae_mask_plugin.training.command import DESCRIPTION, FLAGS_FILE, PROG, installed_versions

if TYPE_CHECKING:
    from sae_mask_plugin.training.config import MaskedLanguageModelSAERunnerConfig
    from sae_mask_plugin.training.flags import TrainOptions

ARCHITECTURE_DEST = "cfg.sae"
MASKING_DEST_PREFIX = "cfg.masking."
LLM_DTYPE_DEST = "options.llm_dtype"
"""Where the parser puts the SAE config (chosen by `--architecture`), the masking settings and the LLM dtype."""

VALUE_TYPES: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "str2bool": str2bool,
    "parse_mask_token": parse_mask_token,
}
"""The snapshot's value parsers that load nothing heavy, by name; values of the other flags (SAELens's own parsers)
are checked by SAELens's parser."""


def load_flags() -> dict[str, Any] | None:
    """The snapshot of the flags (`training.flags.describe_flags`); None when it was taken with other versions of
    SAELens or simple_parsing than the installed ones."""
    flags = json.loads(FLAGS_FILE.read_text())
    return flags if flags["versions"] == installed_versions() else None


def _add_flag(container: argparse._ActionsContainer, flag: dict[str, Any]) -> None:
    """Add one flag of the snapshot; its help is complete (default included) and nothing defaults, so the
    namespace holds only the flags given."""
    container.add_argument(
        *flag["options"],
        action=BooleanOptionalAction if flag["boolean"] else "store",
        dest=flag["dest"],
        nargs=flag["nargs"],
        choices=flag["choices"],
        type=VALUE_TYPES.get(flag["type"]),
        metavar=flag["metavar"],
        help=flag["help"].replace("%", "%%"),
        default=SUPPRESS,
    )


def flag_parser(argv: Sequence[str], flags: dict[str, Any]) -> argparse.ArgumentParser:
    """`sae-mask train`'s parser rebuilt from the snapshot `flags`, with the SAE flags of the architecture that
    `argv` chooses (as simple_parsing resolves `--architecture` first)."""
    shared_flags = [flag for group in flags["groups"] for flag in group.get("flags", [])]
    selector = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    _add_flag(selector, next(flag for flag in shared_flags if flag["dest"] == ARCHITECTURE_DEST))
    chosen, _ = selector.parse_known_args(list(argv))
    architecture = getattr(chosen, ARCHITECTURE_DEST, flags["default_architecture"])
    parser = CommandParser(
        prog=PROG, description=DESCRIPTION, formatter_class=SimpleHelpFormatter, exit_on_error=False
    )
    for group in flags["groups"]:
        group = group["by_architecture"][architecture] if "by_architecture" in group else group
        container = parser.add_argument_group(group["title"], group["description"])
        for flag in group["flags"]:
            _add_flag(container, flag)
    return parser


def check_args(argv: Sequence[str], flags: dict[str, Any]) -> None:
    """Check `sae-mask train` arguments without SAELens: flag names, value types and choices (by the snapshot
    `flags`), the model name (by TransformerLens's snapshot), the LLM dtype and the masking settings; `--help`
    prints the help and exits."""
    namespace = flag_parser(argv, flags).parse_args(list(argv))
    if getattr(namespace, LLM_DTYPE_DEST, None) is not None:
        check_llm_dtype(getattr(namespace, LLM_DTYPE_DEST))
    model_name = getattr(namespace, "cfg.model_name", None)  # only the flags given are in the namespace
    if (
        model_name is not None
        and getattr(namespace, "cfg.model_class_name", "HookedTransformer") == "HookedTransformer"
    ):
        check_model_name(model_name)
    MaskingConfig(
        **{
            dest.removeprefix(MASKING_DEST_PREFIX): value
            for dest, value in vars(namespace).items()
            if dest.startswith(MASKING_DEST_PREFIX)
        }
    )


def parse_args(argv: Sequence[str]) -> tuple[MaskedLanguageModelSAERunnerConfig[Any], TrainOptions]:
    """Parse `sae-mask train` arguments into a runner config (validated) and the extra options: checked against
    the snapshot first (`check_args`), then parsed by SAELens's parser (`training.flags.parse_config`)."""
    flags = load_flags()
    if flags is not None:
        check_args(argv, flags)
    from sae_mask_plugin.training.flags import parse_config

    return parse_config(argv)


def describe_start(cfg: MaskedLanguageModelSAERunnerConfig[Any]) -> str:
    """What `sae-mask train` is about to do: output folder, model, hook, data, masking, and the caches' state."""
    from sae_mask_plugin.info import corpus_state, model_state

    masking = cfg.masking
    mask = "none (baseline, p = 0)"
    if masking.is_active:
        token = masking.mask_token
        if token is None:
            token = "chosen by measurement (printed with its norm ratio)"
        mask = f"p = {masking.p}, {masking.strategy}" + (
            f", mask token {token}" if masking.uses_mask_token else ""
        )
    rows = {
        "output folder": str(Path(cfg.output_path).resolve()) if cfg.output_path else "none (not saved)",
        "model": model_state(cfg.model_name),
        "hook": cfg.hook_name,
        "data": f"{cfg.dataset_path or corpus_state()}, {cfg.training_tokens:,} training tokens",
        "SAE": f"{cfg.sae.architecture()}, {cfg.sae.d_sae:,} latents",
        "LLM dtype": _describe_llm_dtype(cfg.model_from_pretrained_kwargs["dtype"]),
        "masking": mask,
    }
    from sae_mask_plugin.llm_dtype import emulated_bf16_notice

    lines = ["sae-mask train:", *(f"  {key:<14} {value}" for key, value in rows.items())]
    on_cpu = str(cfg.llm_device or cfg.device).startswith("cpu")
    emulated = emulated_bf16_notice(cfg.model_from_pretrained_kwargs["dtype"], "`--llm_dtype float32`")
    return "\n".join(lines + ([emulated] if emulated and on_cpu else []))


def _describe_llm_dtype(llm_dtype: str) -> str:
    """The LLM dtype of a run, with why when it is this machine's default."""
    from sae_mask_plugin.llm_dtype import default_llm_dtype

    default = default_llm_dtype()
    return (
        default.describe() + ", the default" if llm_dtype == default.dtype else f"{llm_dtype} (--llm_dtype)"
    )


@reports_user_errors("sae-mask train")
def main(argv: list[str]) -> int:
    """Entry point of `sae-mask train`; returns the exit status."""
    try:
        cfg, options = parse_args(argv)
    except (ArgumentError, ValueError) as error:
        if debug_enabled():
            raise
        print(f"sae-mask train: {error}", file=sys.stderr)
        return USER_ERROR_STATUS
    except SystemExit as exit_:  # --help, or an error argparse reports itself
        return int(exit_.code or 0)
    if cfg.model_class_name == "HookedTransformer":
        check_model_available(cfg.model_name)
    print(describe_start(cfg), flush=True)
    from sae_mask_plugin.training.defaults import train_sae

    train_sae(cfg, init_b_dec=options.init_b_dec)
    if cfg.output_path is not None:
        print(f"saved the SAE to {cfg.output_path}")
    return 0
