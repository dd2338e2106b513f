"""The flags of `sae-mask train`: SAELens's training command line (`python -m sae_lens.llm_sae_training_runner`) over
the masked runner config, so every SAELens flag and every masking flag exist with no hand-written list.

Built like SAELens's `_parse_cfg_args`: a simple_parsing dataclass over the runner config whose `--architecture`
subgroups come from SAELens's training registry; defaults are changed to train a useful SAE in a short CPU run on
the embedded model and corpus (see `sae_mask_plugin.training.defaults`).

Building this parser imports SAELens (seconds), so `sae-mask train` first checks its arguments and prints its help
from `flags.json`, a snapshot of this parser's flags for every architecture (`describe_flags`). A test takes the
snapshot again from the installed SAELens and compares; after a change to SAELens, simple_parsing or the settings
of this command, regenerate it with

    python -m sae_mask_plugin.training.flags
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from argparse import Action, HelpFormatter, Namespace
from collections.abc import Sequence
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from sae_lens.config import LoggingConfig
from sae_lens.saes.sae import TrainingSAEConfig
from simple_parsing import ArgumentParser, subgroups
from simple_parsing.docstring import get_attribute_docstring
from simple_parsing.helpers.custom_actions import BooleanOptionalAction
from simple_parsing.wrappers.field_metavar import get_metavar

from sae_mask_plugin.llm_dtype import with_llm_dtype
from sae_mask_plugin.training.command import DESCRIPTION, FLAGS_FILE, PROG, installed_versions
from sae_mask_plugin.training.config import (
    AuxKWindowWarning,
    MaskedLanguageModelSAERunnerConfig,
    warn_when_auxk_cannot_act,
)
from sae_mask_plugin.training.defaults import (
    DEFAULT_ARCHITECTURE,
    RUNNER_DEFAULTS,
    complete_sae_config,
    sae_subgroups,
    short_run_dead_feature_window,
)
from sae_mask_plugin.training.settings import BDecInit

SAELENS_FIELD_HELP: dict[str, str] = {
    "log_to_wandb": "Log metrics and the final SAE to Weights & Biases; SAELens runs its in-training evals "
    "(CE loss recovered, on clean text) only when this is on.",
    "log_activations_store_to_wandb": "Also upload the activations store's state to W&B at checkpoints.",
    "log_optimizer_state_to_wandb": "Also upload the optimizer state to W&B at checkpoints.",
    "log_weights_to_wandb": "Upload the SAE weights as a W&B artifact.",
    "wandb_project": "W&B project name.",
    "wandb_id": "W&B run id (also names the checkpoint sub-folder).",
    "run_name": "W&B run name; None derives one from architecture, width, lr and tokens.",
    "wandb_entity": "W&B entity (user or team).",
    "wandb_log_frequency": "Log training metrics every this many steps.",
    "eval_every_n_wandb_logs": "Run SAELens's in-training evals every this many W&B logs.",
    "d_in": "Input size of the SAE: the hook's activation size (576 for the embedded model's residual stream).",
    "d_sae": "Number of SAE latents.",
    "dtype": "Data type of the SAE parameters.",
    "device": "Device of the SAE parameters.",
    "apply_b_dec_to_input": "Subtract the decoder bias from the input before encoding.",
    "normalize_activations": "How activations are normalised for the SAE (none, expected_average_only_in, "
    "layer_norm, covariance_whitening).",
    "reshape_activations": "Reshape hook activations for the SAE (hook_z: concatenate attention heads).",
    "metadata": "SAE metadata; filled in by the runner (masking settings included).",
    "matryoshka_widths": "The widths of the matryoshka levels; empty: d_sae/16, d_sae/4, d_sae.",
}
"""Help for SAELens config fields that SAELens leaves undocumented, so that `--help` documents every flag."""


@dataclass
class TrainOptions:
    """Options of `sae-mask train` that are not part of the runner config.

    Args:
        init_b_dec (str): `mean` sets the SAE's decoder bias to the mean of the first training batch (short
            runs converge much faster; needs normalize_activations=none); `default` keeps the architecture's
            initialisation.
        llm_dtype (str): The dtype the LLM runs in, float32 or bfloat16 (sets
            model_from_pretrained_kwargs.dtype). Unset: bfloat16 where the CPU computes it natively (AMX-BF16 or
            AVX512-BF16), else float32; `sae-mask info` shows which and why. The SAE keeps its own dtype.
    """

    init_b_dec: BDecInit = "mean"
    llm_dtype: str | None = None


class _DocstringHelpParser(ArgumentParser):
    """Help strings from class docstrings only, never from source comments, as SAELens's CLI does (see
    https://github.com/lebrice/SimpleParsing/issues/352); fields SAELens leaves undocumented get
    `SAELENS_FIELD_HELP`."""

    def _resolve_subgroups(
        self, wrappers: list[Any], args: list[str], namespace: Namespace | None = None
    ) -> tuple[list[Any], dict[str, str]]:
        resolved_wrappers, chosen_subgroups = super()._resolve_subgroups(wrappers, args, namespace)
        for root_wrapper in resolved_wrappers:
            for dc_wrapper in [root_wrapper, *root_wrapper.descendants]:
                for field_wrapper in dc_wrapper.fields:
                    docstring = field_wrapper._docstring
                    field_wrapper._docstring = dataclasses.replace(
                        docstring,
                        comment_above="",
                        comment_inline="",
                        docstring_below="",
                        desc_from_cls_docstring=docstring.desc_from_cls_docstring
                        or SAELENS_FIELD_HELP.get(field_wrapper.name, ""),
                    )
        return resolved_wrappers, chosen_subgroups


def _cli_config_class() -> type[MaskedLanguageModelSAERunnerConfig[Any]]:
    """The runner config with the short-run defaults and the architecture subgroups."""
    base_fields = {f.name: f for f in dataclasses.fields(MaskedLanguageModelSAERunnerConfig)}
    overridden = [
        (
            name,
            base_fields[name].type,
            field(default=value, metadata={**base_fields[name].metadata, "help": _help_of(name)}),
        )
        for name, value in RUNNER_DEFAULTS.items()
    ]
    return make_dataclass(
        "MaskedTrainCommandLineConfig",
        [
            (
                "sae",
                TrainingSAEConfig,
                subgroups(sae_subgroups(), default=DEFAULT_ARCHITECTURE, alias="--architecture"),
            ),
            *overridden,
            (
                "logger",
                LoggingConfig,
                field(
                    default_factory=lambda: LoggingConfig(log_to_wandb=False),
                    metadata={"help": _help_of("logger")},
                ),
            ),
        ],
        bases=(MaskedLanguageModelSAERunnerConfig,),
        namespace={"__doc__": MaskedLanguageModelSAERunnerConfig.__doc__},
    )


def _help_of(name: str) -> str:
    """The help of a runner field, from SAELens's docstring (for fields whose default this command changes)."""
    return get_attribute_docstring(MaskedLanguageModelSAERunnerConfig, name).desc_from_cls_docstring


def build_parser() -> ArgumentParser:
    parser = _DocstringHelpParser(prog=PROG, description=DESCRIPTION, exit_on_error=False)
    parser.add_arguments(_cli_config_class(), dest="cfg")
    parser.add_arguments(TrainOptions, dest="options")
    return parser


def parse_config(argv: Sequence[str]) -> tuple[MaskedLanguageModelSAERunnerConfig[Any], TrainOptions]:
    """Parse `sae-mask train` arguments with SAELens's parser into a runner config (validated) and the options."""
    with warnings.catch_warnings():  # the window is set below unless given
        warnings.simplefilter("ignore", AuxKWindowWarning)
        namespace = build_parser().parse_args(list(argv))
    complete_sae_config(namespace.cfg.sae)
    cfg = namespace.cfg
    if not any(arg.split("=")[0] == "--dead_feature_window" for arg in argv):
        cfg.dead_feature_window = short_run_dead_feature_window(
            cfg.training_tokens, cfg.train_batch_size_tokens
        )
    warn_when_auxk_cannot_act([cfg.sae], cfg)
    cfg.model_from_pretrained_kwargs = with_llm_dtype(
        cfg.model_from_pretrained_kwargs, namespace.options.llm_dtype
    )
    return cfg, namespace.options


def _describe_flag(action: Action, formatter: HelpFormatter) -> dict[str, Any]:
    """One flag as the snapshot stores it: what argparse needs to parse it and to print its help line."""
    negative_options = getattr(action, "negative_option_strings", [])  # BooleanOptionalAction adds them again
    return {
        "options": [option for option in action.option_strings if option not in negative_options],
        "dest": action.dest,
        "boolean": isinstance(action, BooleanOptionalAction),
        "nargs": action.nargs,
        "choices": None if action.choices is None else list(action.choices),
        "type": getattr(action.type, "__name__", None),
        "metavar": action.metavar if action.choices else action.metavar or get_metavar(action.type),
        "help": formatter._expand_help(action),
    }


def _describe_groups(architecture: str) -> list[dict[str, Any]]:
    """The argument groups of `build_parser()` when `--architecture` is `architecture`."""
    parser = build_parser()
    parser._preprocessing(["--architecture", architecture])  # adds the arguments, as parsing would
    formatter = parser._get_formatter()
    return [
        {
            "title": group.title,
            "description": group.description,
            "flags": [_describe_flag(action, formatter) for action in group._group_actions],
        }
        for group in parser._action_groups
        if group not in (parser._positionals, parser._optionals)  # argparse's own: -h, --help
    ]


def describe_flags() -> dict[str, Any]:
    """The snapshot `sae-mask train` checks its arguments and prints its help from: the versions of SAELens and
    simple_parsing it was taken with, the default architecture and every argument group of `build_parser()`; a
    group that depends on `--architecture` (the SAE config's) is stored once per architecture."""
    architectures = list(sae_subgroups())
    groups = []
    for variants in zip(*(_describe_groups(name) for name in architectures), strict=True):
        if all(variant == variants[0] for variant in variants):
            groups.append(variants[0])
        else:
            groups.append({"by_architecture": dict(zip(architectures, variants, strict=True))})
    return {"versions": installed_versions(), "default_architecture": DEFAULT_ARCHITECTURE, "groups": groups}


def write_flags(path: Path = FLAGS_FILE) -> None:
    """Take the snapshot from the installed SAELens and write it to `path` (the packaged `flags.json`)."""
    path.write_text(json.dumps(describe_flags(), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_flags()
    print(f"wrote {FLAGS_FILE}")
