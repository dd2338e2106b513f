"""Cost of a k sweep from one masked LLM pass: 4 SAEs (k = 16, 32, 64, 128) trained by the masked multi-SAE runner
vs one SAE alone, same tokens, on the embedded default (default hook and width of `sae-mask train`), beside the
LLM pass alone (clean activations to the same hook, same dtype and tokens). Targets: 4 SAEs <= 1.5x the time of
one, and one SAE >= 0.75 of the LLM-only tokens/s (the SAE step should not cost more than a third of the pass).
Also printed: the time of 4 separate runs (4 x one), which is what the shared pass saves. The ratios depend on
how the LLM forward compares with the SAE steps: a shallower hook (`--hook blocks.6.hook_resid_post`) makes the
LLM cheaper; `--sparse-step` trains with the plugin's sparse SAE step (`sparse_sae_step`).

    python benchmarks/multi_sae.py [--training-tokens 40960] [--hook blocks.12.hook_resid_post] [--sparse-step]
        [--llm_dtype float32|bfloat16]   (default: the CPU's default LLM dtype, see `sae-mask info`)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from sae_lens import BatchTopKTrainingSAEConfig, LoggingConfig

from sae_mask_plugin import (
    MaskedLanguageModelSAETrainingRunner,
    MaskedMultiSAETrainingRunner,
    MaskedMultiSAETrainingRunnerConfig,
    MaskingConfig,
    load_embedded_model,
    make_runner_config,
)
from sae_mask_plugin.clean_activations import clean_token_activations
from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.llm_dtype import LLM_DTYPES, llm_dtype_or_default
from sae_mask_plugin.training.defaults import (
    DEFAULT_HOOK,
    RUNNER_DEFAULTS,
    SAE_DEFAULTS,
    SHORT_RUN_STREAM_SETTINGS,
)

KS = (16, 32, 64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--training-tokens", type=int, default=40 * 1024)
    parser.add_argument("--hook", default=DEFAULT_HOOK)
    parser.add_argument("--p", type=float, default=0.3)
    parser.add_argument("--llm_dtype", choices=LLM_DTYPES, default=None)
    parser.add_argument("--sparse-step", action="store_true", help="the plugin's sparse SAE step")
    args = parser.parse_args()
    llm_dtype = llm_dtype_or_default(args.llm_dtype)

    model, corpus = load_embedded_model(dtype=getattr(torch, llm_dtype)), load_embedded_corpus(seed=0)
    masking = MaskingConfig(p=args.p, mask_token="<repo_name>")
    shared = {key: RUNNER_DEFAULTS[key] for key in SHORT_RUN_STREAM_SETTINGS}
    with tempfile.TemporaryDirectory() as out:
        single = make_runner_config(
            "batchtopk",
            masking=masking,
            llm_dtype=llm_dtype,
            hook_name=args.hook,
            training_tokens=args.training_tokens,
            output_path=str(Path(out) / "single"),
            sparse_sae_step=args.sparse_step,
        )
        runner = MaskedLanguageModelSAETrainingRunner(single, override_model=model, override_dataset=corpus)
        start = time.perf_counter()
        runner.run()
        one = time.perf_counter() - start

        multi = MaskedMultiSAETrainingRunnerConfig(
            saes={
                f"k{k}": BatchTopKTrainingSAEConfig(
                    d_in=SAE_DEFAULTS["d_in"],
                    d_sae=SAE_DEFAULTS["d_sae"],
                    k=k,
                    topk_threshold_lr=SAE_DEFAULTS["topk_threshold_lr"],
                )
                for k in KS
            },
            hook_names=args.hook,
            masking=masking,
            model_name=RUNNER_DEFAULTS["model_name"],
            model_from_pretrained_kwargs={"dtype": llm_dtype},
            training_tokens=args.training_tokens,
            logger=LoggingConfig(log_to_wandb=False),
            output_path=str(Path(out) / "multi"),
            checkpoint_path=str(Path(out) / "checkpoints"),
            sparse_sae_step=args.sparse_step,
            dead_feature_window=single.dead_feature_window,  # the short-run window, as the single run's
            **shared,
        )
        runner_multi = MaskedMultiSAETrainingRunner(multi, override_model=model, override_dataset=corpus)
        start = time.perf_counter()
        runner_multi.run()
        four = time.perf_counter() - start

        texts = corpus["text"][:5_000]
        start = time.perf_counter()
        clean_token_activations(
            model, args.hook, texts, args.training_tokens, shared["context_size"], shared["seqpos_slice"]
        )
        llm_only = time.perf_counter() - start

    step = "the sparse SAE step" if args.sparse_step else "SAELens's SAE step"
    print(f"\nLLM in {llm_dtype}, {step}")
    print(f"{'run':<40} {'seconds':>8} {'tokens/s':>9}")
    print(f"{'LLM pass alone (to the hook)':<40} {llm_only:>8.1f} {args.training_tokens / llm_only:>9.0f}")
    print(f"{'1 SAE (k=32)':<40} {one:>8.1f} {args.training_tokens / one:>9.0f}")
    print(f"{f'{len(KS)} SAEs (k={KS}), one pass':<40} {four:>8.1f} {args.training_tokens / four:>9.0f}")
    print(
        f"{f'{len(KS)} separate runs (estimate)':<40} {len(KS) * one:>8.1f} {args.training_tokens / one / len(KS):>9.0f}"
    )
    print(
        f"{len(KS)} SAEs / 1 SAE = {four / one:.2f}x (target <= 1.5x); one shared pass saves "
        f"{1 - four / (len(KS) * one):.0%} of {len(KS)} separate runs"
    )
    print(f"1 SAE / LLM pass alone = {llm_only / one:.2f} of the LLM-only tokens/s (target >= 0.75)")


if __name__ == "__main__":
    main()
