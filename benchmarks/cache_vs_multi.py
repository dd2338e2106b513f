"""Two ways to train a k sweep (k = 16, 32, 64) for the same number of SAE steps on the embedded default, side by
side in one run:

- `one pass`: the masked multi-SAE runner reads `--training-tokens` fresh tokens through the LLM (every SAE step
  sees new text and a new mask draw);
- `cache x E`: a masked activation cache of `--training-tokens / E` tokens is built once (one LLM pass, one mask
  draw), and each SAE trains over it for E epochs (`use_cached_activations`; SAELens's multi-SAE runner reads no
  caches, so one single-SAE run per k).

Printed: wall time of each (cache build and training apart), the ratio, and each k = 32 SAE's FVU on clean
calibration-split text, so the cost of re-using one mask draw and one set of texts is seen next to the saving.

    python benchmarks/cache_vs_multi.py [--training-tokens 81920] [--epochs 4] [--d_sae 2048]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from sae_lens import SAE, LoggingConfig, MatryoshkaBatchTopKTrainingSAEConfig

from sae_mask_plugin import (
    MaskedCacheActivationsRunner,
    MaskedCacheActivationsRunnerConfig,
    MaskedLanguageModelSAETrainingRunner,
    MaskedMultiSAETrainingRunner,
    MaskedMultiSAETrainingRunnerConfig,
    MaskingConfig,
    load_embedded_model,
    make_runner_config,
)
from sae_mask_plugin.calibration import calibration_activations, fvu_and_l0
from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.training.defaults import (
    DEFAULT_HOOK,
    RUNNER_DEFAULTS,
    SAE_DEFAULTS,
    SHORT_RUN_STREAM_SETTINGS,
    matryoshka_widths,
)

KS = (16, 32, 64)
LLM_BATCH_TOKENS = RUNNER_DEFAULTS["store_batch_size_prompts"] * RUNNER_DEFAULTS["context_size"]


def multi_config(
    args: argparse.Namespace, out: Path, masking: MaskingConfig
) -> MaskedMultiSAETrainingRunnerConfig:
    """The one-pass k sweep: every SAE of `KS` from one masked LLM pass."""
    return MaskedMultiSAETrainingRunnerConfig(
        saes={
            f"k{k}": MatryoshkaBatchTopKTrainingSAEConfig(
                d_in=SAE_DEFAULTS["d_in"],
                d_sae=args.d_sae,
                k=k,
                topk_threshold_lr=SAE_DEFAULTS["topk_threshold_lr"],
                matryoshka_widths=matryoshka_widths(args.d_sae),
            )
            for k in KS
        },
        hook_names=DEFAULT_HOOK,
        masking=masking,
        model_name=RUNNER_DEFAULTS["model_name"],
        training_tokens=args.training_tokens,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=str(out / "saes"),
        checkpoint_path=str(out / "checkpoints"),
        **{key: RUNNER_DEFAULTS[key] for key in SHORT_RUN_STREAM_SETTINGS},
    )


def clean_fvu(sae_dir: Path, activations: torch.Tensor) -> float:
    """FVU of the saved SAE on clean activations [n, d_in]."""
    fvu, _ = fvu_and_l0(SAE.load_from_disk(str(sae_dir), device="cpu"), activations)
    return fvu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--training-tokens", type=int, default=80 * 1024)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--d_sae", type=int, default=2048)
    parser.add_argument("--p", type=float, default=0.3)
    args = parser.parse_args()

    model = load_embedded_model()
    masking = MaskingConfig(p=args.p, mask_token="<repo_name>", seed=0)
    clean = calibration_activations(model, DEFAULT_HOOK, n_tokens=16_384, show_progress=False)
    with tempfile.TemporaryDirectory() as scratch:
        one_pass, cached = Path(scratch) / "one_pass", Path(scratch) / "cached"

        start = time.perf_counter()
        cfg = multi_config(args, one_pass, masking)
        MaskedMultiSAETrainingRunner(
            cfg, override_model=model, override_dataset=load_embedded_corpus(seed=0), init_b_dec="mean"
        ).run()
        one_pass_seconds = time.perf_counter() - start

        start = time.perf_counter()
        cache_tokens = args.training_tokens // args.epochs
        cache_cfg = MaskedCacheActivationsRunnerConfig(
            dataset_path="",
            model_name=RUNNER_DEFAULTS["model_name"],
            model_batch_size=RUNNER_DEFAULTS["store_batch_size_prompts"],
            hook_name=DEFAULT_HOOK,
            d_in=SAE_DEFAULTS["d_in"],
            training_tokens=cache_tokens,
            context_size=RUNNER_DEFAULTS["context_size"],
            new_cached_activations_path=str(cached / "cache"),
            seqpos_slice=RUNNER_DEFAULTS["seqpos_slice"],
            # SAELens caches whole buffers of `buffer_size_gb` (default 2 GB, ~870k tokens here): one buffer of
            # the cache's tokens, rounded up to whole LLM batches
            buffer_size_gb=(cache_tokens + LLM_BATCH_TOKENS) * SAE_DEFAULTS["d_in"] * 4 / 1e9,
            shuffle=True,
            seed=0,
            device="cpu",
            masking=masking,
        )
        cache_tokens = cache_cfg.n_tokens_in_buffer * cache_cfg.n_buffers
        runner = MaskedCacheActivationsRunner(cache_cfg, override_dataset=load_embedded_corpus(seed=0))
        load_seconds = time.perf_counter() - start  # the cache runner loads its own LLM copy
        runner.run()
        cache_seconds = time.perf_counter() - start - load_seconds

        # SAELens's multi-SAE runner does not read caches: one single-SAE run per k over the cache
        corpus = load_embedded_corpus(seed=0)
        start = time.perf_counter()
        for k in KS:
            cfg = make_runner_config(
                sae={"d_sae": args.d_sae, "k": k},
                training_tokens=args.training_tokens,
                use_cached_activations=True,
                cached_activations_path=str(cached / "cache"),
                # the cache holds the kept positions only
                context_size=cache_cfg.sliced_context_size,
                seqpos_slice=(None,),
                output_path=str(cached / "saes" / f"k{k}"),
                checkpoint_path=str(cached / "checkpoints"),
            )
            # SAELens asks for a dataset even when it reads a cache
            MaskedLanguageModelSAETrainingRunner(
                cfg, override_dataset=corpus, override_model=model, init_b_dec="mean"
            ).run()
        train_seconds = time.perf_counter() - start

        fvu_one_pass = clean_fvu(one_pass / "saes" / "k32", clean)
        fvu_cached = clean_fvu(cached / "saes" / "k32", clean)

    cached_seconds = cache_seconds + train_seconds
    print(f"\n{args.training_tokens:,} SAE training tokens x {len(KS)} SAEs (k = {KS}), width {args.d_sae}")
    print(f"{'way':<44} {'seconds':>8} {'k32 clean FVU':>14}")
    print(f"{'one pass (fresh tokens)':<44} {one_pass_seconds:>8.1f} {fvu_one_pass:>14.3f}")
    print(
        f"{f'cache {cache_tokens:,} tokens x {args.training_tokens / cache_tokens:.2f} epochs':<44} {cached_seconds:>8.1f} {fvu_cached:>14.3f}"
        f"   (build {cache_seconds:.1f} s + train {train_seconds:.1f} s; LLM load {load_seconds:.1f} s not counted)"
    )
    print(f"cache / one pass = {cached_seconds / one_pass_seconds:.2f}x")


if __name__ == "__main__":
    main()
