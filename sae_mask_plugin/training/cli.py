"""`sae-mask train`: SAELens's training command line (`python -m sae_lens.llm_sae_training_runner`) over the
masked runner config, so every SAELens flag and every masking flag exist with no hand-written list.

Built like SAELens's `_parse_cfg_args`: a simple_parsing dataclass over the runner config whose `--architecture`
subgroups come from SAELens's training registry; defaults are changed to train a useful SAE in a short CPU run on
the embedded model and corpus (see `sae_mask_plugin.training.defaults`).
"""

from __future__ import annotations

import dataclasses
import sys
from argparse import ArgumentError, Namespace
from collections.abc import Sequence
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from sae_lens.config import LoggingConfig
from sae_lens.saes.sae import TrainingSAEConfig
from simple_parsing import ArgumentParser, subgroups
from simple_parsing.docstring import get_attribute_docstring

from sae_mask_plugin.embedded.model import check_model_available
from sae_mask_plugin.errors import reports_user_errors
from sae_mask_plugin.training.config import MaskedLanguageModelSAERunnerConfig
from sae_mask_plugin.training.defaults import (
    DEFAULT_ARCHITECTURE,
    RUNNER_DEFAULTS,
    complete_sae_config,
    sae_subgroups,
    train_sae,
)
from sae_mask_plugin.training.runner import BDecInit

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
    """

    init_b_dec: BDecInit = "mean"


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
    parser = _DocstringHelpParser(
        prog="sae-mask train",
        description="Train an SAE with SAELens, masked or not. Every SAELens training flag is accepted; "
        "--p 0 trains the baseline. Defaults: the embedded model and corpus, settings for a short CPU run.",
        exit_on_error=False,
    )
    parser.add_arguments(_cli_config_class(), dest="cfg")
    parser.add_arguments(TrainOptions, dest="options")
    return parser


def parse_args(argv: Sequence[str]) -> tuple[MaskedLanguageModelSAERunnerConfig[Any], TrainOptions]:
    """Parse `sae-mask train` arguments into a runner config (validated) and the extra options."""
    namespace = build_parser().parse_args(list(argv))
    complete_sae_config(namespace.cfg.sae)
    return namespace.cfg, namespace.options


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
        "masking": mask,
    }
    return "sae-mask train:\n" + "\n".join(f"  {key:<14} {value}" for key, value in rows.items())


@reports_user_errors("sae-mask train")
def main(argv: list[str]) -> int:
    """Entry point of `sae-mask train`; returns the exit status."""
    try:
        cfg, options = parse_args(argv)
    except (ArgumentError, ValueError) as error:
        print(f"sae-mask train: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, or an error argparse reports itself
        return int(exit_.code or 0)
    if cfg.model_class_name == "HookedTransformer":
        check_model_available(cfg.model_name)
    print(describe_start(cfg), flush=True)
    train_sae(cfg, init_b_dec=options.init_b_dec)
    if cfg.output_path is not None:
        print(f"saved the SAE to {cfg.output_path}")
    return 0
