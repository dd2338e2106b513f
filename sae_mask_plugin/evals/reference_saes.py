"""Small plain-SAELens SAEs on the embedded default, for tests, benchmarks and smoke runs of the evals.

`train_reference_sae` trains a BatchTopK SAE with SAELens's own `LanguageModelSAETrainingRunner` on the
embedded corpus (no masking) and saves it as SAELens does (`cfg.json`, `sae_weights.safetensors`), so the
evals see exactly what any SAELens user would hand them.
"""

from __future__ import annotations

from pathlib import Path

import torch

DEFAULT_HOOK_NAME = "blocks.12.hook_resid_post"


def train_reference_sae(
    output_path: str | Path,
    hook_name: str = DEFAULT_HOOK_NAME,
    d_sae: int = 2048,
    k: int = 32,
    training_tokens: int = 60_000,
    context_size: int = 128,
    seed: int = 0,
    model=None,
) -> Path:
    """Train a BatchTopK SAE on the embedded default and save it under `output_path`; returns that folder.

    Short runs need a large learning rate, a fast top-k threshold and `b_dec` initialised to the mean
    activation (`training.defaults`). `model` may pass an already loaded embedded `HookedTransformer`.
    """
    from sae_lens import (
        BatchTopKTrainingSAEConfig,
        LanguageModelSAERunnerConfig,
        LanguageModelSAETrainingRunner,
    )
    from sae_lens.config import LoggingConfig

    from sae_mask_plugin.embedded.corpus import load_embedded_corpus
    from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME, load_embedded_model
    from sae_mask_plugin.training.defaults import SAE_DEFAULTS

    model = model if model is not None else load_embedded_model()
    batch_tokens = 1024
    cfg = LanguageModelSAERunnerConfig(
        sae=BatchTopKTrainingSAEConfig(
            d_in=model.cfg.d_model,
            d_sae=d_sae,
            k=k,
            topk_threshold_lr=SAE_DEFAULTS["topk_threshold_lr"],
            dtype="float32",
        ),
        model_name=EMBEDDED_MODEL_NAME,
        hook_name=hook_name,
        dataset_path="embedded-corpus",
        is_dataset_tokenized=False,
        streaming=False,
        context_size=context_size,
        prepend_bos=True,
        exclude_special_tokens=True,
        training_tokens=training_tokens,
        train_batch_size_tokens=batch_tokens,
        store_batch_size_prompts=8,
        n_batches_in_buffer=2 * batch_tokens // context_size,  # the mixing buffer holds rows, not prompts
        lr=4e-3,
        lr_warm_up_steps=0,
        seed=seed,
        device="cpu",
        logger=LoggingConfig(log_to_wandb=False),
        checkpoint_path=None,
        output_path=str(output_path),
        verbose=False,
    )
    torch.manual_seed(seed)
    runner = LanguageModelSAETrainingRunner(
        cfg, override_model=model, override_dataset=load_embedded_corpus(seed=seed, show_progress=False)
    )
    mean_activation = runner.activations_store.get_filtered_llm_batch().mean(dim=0)
    runner.sae.b_dec.data.copy_(mean_activation)
    runner.run()
    return Path(output_path)
