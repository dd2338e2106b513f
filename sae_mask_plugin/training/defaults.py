"""Settings that train a useful SAE in a short CPU run on the embedded default (measured below), and a
one-call Python entry point for scripts (the demo, sweeps).

Short runs (<= 1 M tokens) need `b_dec` initialised to the activation mean, a learning rate of 2e-3…5e-3 and,
for (Batch)TopK, a larger `topk_threshold_lr`; SmolLM2's BOS carries ~150x the median norm, so special tokens
are excluded, and so is the first position after it (`seqpos_slice=(2, None)`): the first text token of a
window can carry massive activations (at `blocks.12`, norms up to 27,000 against a median of ~145, on about 3 %
of windows, most often when the window opens mid-text). A 2,048-token batch holding
one has an MSE up to 1,000x the usual (6.8 M vs ~7 k; 13 of the 98 steps of one 200 k-token run held a token of
norm > 10,000); without them the same run reached FVU 0.29 instead of 0.32 on unseen text.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import torch
from sae_lens import MatryoshkaBatchTopKTrainingSAEConfig
from sae_lens.config import HfDataset, LoggingConfig
from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY, get_sae_training_class
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig
from transformer_lens import HookedRootModule

from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.embedded.model import DEFAULT_HOOK, EMBEDDED_MODEL_NAME
from sae_mask_plugin.llm_dtype import with_llm_dtype
from sae_mask_plugin.masking.config import MaskingConfig
from sae_mask_plugin.training.config import MaskedLanguageModelSAERunnerConfig
from sae_mask_plugin.training.runner import MaskedLanguageModelSAETrainingRunner
from sae_mask_plugin.training.settings import MATRYOSHKA_FRACTIONS, BDecInit

DEFAULT_ARCHITECTURE = "matryoshka_batchtopk"
EMBEDDED_D_MODEL = 576

RUNNER_DEFAULTS: dict[str, Any] = {
    "model_name": EMBEDDED_MODEL_NAME,
    "hook_name": DEFAULT_HOOK,
    "is_dataset_tokenized": False,
    "streaming": False,
    "context_size": 128,
    "store_batch_size_prompts": 8,
    "n_batches_in_buffer": 512,  # SAELens mixes 512 x 126 activations: 31 batches (`training.config.MIN_MIXING_BATCHES`)
    "training_tokens": 200_000,
    "train_batch_size_tokens": 2048,
    "lr": 3e-3,
    "exclude_special_tokens": True,
    "seqpos_slice": (2, None),
    "output_path": "output",
    "checkpoint_path": "checkpoints",
}
"""Runner fields whose SAELens defaults are changed for short CPU runs (`logger.log_to_wandb` is False too)."""
SHORT_RUN_STREAM_SETTINGS = (
    "context_size",
    "store_batch_size_prompts",
    "n_batches_in_buffer",
    "train_batch_size_tokens",
    "lr",
    "exclude_special_tokens",
    "seqpos_slice",
)
"""The `RUNNER_DEFAULTS` that shape the training stream and steps, shared by single and multi-SAE runner configs."""

SAE_DEFAULTS: dict[str, Any] = {
    "d_in": EMBEDDED_D_MODEL,
    "d_sae": 4096,
    "k": 32,
    "topk_threshold_lr": 0.05,
}
"""SAE config fields changed for short CPU runs, applied where the architecture's config has the field."""


def matryoshka_widths(d_sae: int) -> list[int]:
    """Default nested widths d_sae/16, d_sae/4, d_sae (`MATRYOSHKA_FRACTIONS`; the outer level is the whole SAE)."""
    return sorted({*(max(1, int(fraction * d_sae)) for fraction in MATRYOSHKA_FRACTIONS), d_sae})


def sae_config_kwargs(config_class: type[TrainingSAEConfig], **overrides: Any) -> dict[str, Any]:
    """`SAE_DEFAULTS` and `overrides` restricted to the fields `config_class` has."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {key: value for key, value in {**SAE_DEFAULTS, **overrides}.items() if key in names}


def complete_sae_config(sae: TrainingSAEConfig) -> TrainingSAEConfig:
    """Fill settings that depend on others: empty Matryoshka widths become `matryoshka_widths(d_sae)`."""
    if isinstance(sae, MatryoshkaBatchTopKTrainingSAEConfig) and not sae.matryoshka_widths:
        sae.matryoshka_widths = matryoshka_widths(sae.d_sae)
    return sae


def sae_subgroups() -> dict[str, partial[TrainingSAEConfig]]:
    """One short-run SAE config per registered training architecture (for `--architecture`)."""
    return {
        name: partial(config_class, **sae_config_kwargs(config_class))
        for name, (_, config_class) in SAE_TRAINING_CLASS_REGISTRY.items()
    }


SAELENS_DEAD_FEATURE_WINDOW = 1000
"""SAELens's `dead_feature_window` (steps), longer than every short run: AuxK never acts there."""


def short_run_dead_feature_window(training_tokens: int, train_batch_size_tokens: int) -> int:
    """AuxK's dead-latent window for a run of this length: about a tenth of its steps (at least 1), SAELens's
    1,000 steps for runs of 10,000 steps and more. A latent counts as dead after the window without firing, and
    only dead latents get AuxK's gradient: with SAELens's window a short run never revives one (the second
    edition's learning curves, `docs/smollm2_study/learning_curve/`: most latents dead with it, >= 0.97 alive with
    a 50-step window over ~490 steps)."""
    steps = training_tokens // train_batch_size_tokens
    return max(1, min(SAELENS_DEAD_FEATURE_WINDOW, steps // 10))


def make_runner_config(
    architecture: str = DEFAULT_ARCHITECTURE,
    *,
    masking: MaskingConfig | None = None,
    sae: dict[str, Any] | None = None,
    llm_dtype: str | None = None,
    **runner: Any,
) -> MaskedLanguageModelSAERunnerConfig[Any]:
    """A masked runner config with the short-run defaults; a baseline when `masking` is None.

    Args:
        architecture: A SAELens training architecture (`sae_lens.registry`).
        masking: Masking settings; None trains a baseline (p = 0) with otherwise identical settings.
        sae: SAE config fields (e.g. `d_sae`, `k`, `matryoshka_widths`), over `SAE_DEFAULTS`.
        llm_dtype: `float32` or `bfloat16`, the dtype the LLM runs in (`model_from_pretrained_kwargs.dtype`);
            None: bfloat16 where the CPU computes it natively, else float32 (`llm_dtype.default_llm_dtype`).
        runner: `LanguageModelSAERunnerConfig` fields (e.g. `hook_name`, `training_tokens`, `seed`,
            `output_path`), over `RUNNER_DEFAULTS`; without `dead_feature_window`, the run's
            `short_run_dead_feature_window`.
    """
    if architecture not in SAE_TRAINING_CLASS_REGISTRY:
        raise ValueError(
            f"unknown architecture {architecture!r}; SAELens has: {', '.join(SAE_TRAINING_CLASS_REGISTRY)}"
        )
    _, config_class = get_sae_training_class(architecture)
    sae_kwargs = sae_config_kwargs(config_class, **(sae or {}))
    unknown = set(sae or {}) - set(sae_kwargs)
    if unknown:
        raise ValueError(f"{architecture} SAE configs have no field(s) {', '.join(sorted(unknown))}")
    settings = {**RUNNER_DEFAULTS, "logger": LoggingConfig(log_to_wandb=False), "verbose": False, **runner}
    settings.setdefault(
        "dead_feature_window",
        short_run_dead_feature_window(settings["training_tokens"], settings["train_batch_size_tokens"]),
    )
    settings["model_from_pretrained_kwargs"] = with_llm_dtype(
        runner.get("model_from_pretrained_kwargs"), llm_dtype
    )
    return MaskedLanguageModelSAERunnerConfig(
        sae=complete_sae_config(config_class(**sae_kwargs)),
        masking=masking or MaskingConfig(p=0.0),
        **settings,
    )


def train_sae(
    cfg: MaskedLanguageModelSAERunnerConfig[Any],
    *,
    override_model: HookedRootModule | None = None,
    override_dataset: HfDataset | None = None,
    init_b_dec: BDecInit = "mean",
) -> TrainingSAE[Any]:
    """Train one SAE; the embedded corpus is the data when `cfg.dataset_path` is empty and no dataset is given.

    Returns the trained SAE (also saved to `cfg.output_path` with its masking metadata, unless None).
    """
    if override_dataset is None and not cfg.dataset_path:
        override_dataset = load_embedded_corpus(seed=0)
    runner = MaskedLanguageModelSAETrainingRunner(
        cfg, override_dataset=override_dataset, override_model=override_model, init_b_dec=init_b_dec
    )
    with torch.random.fork_rng():
        return runner.run()
