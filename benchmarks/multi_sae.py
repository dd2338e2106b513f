"""Cost of a k sweep from one masked LLM pass: 4 SAEs (k = 16, 32, 64, 128) trained by the masked multi-SAE runner
vs one SAE alone, same tokens, on the embedded default (default hook and width of `sae-mask train`).
Target: 4 SAEs <= 1.3x the time of one. Also printed: the time of 4 separate runs (4 x one), which is what the
shared pass saves. The ratio depends on how the LLM forward compares with the SAE steps: a shallower hook
(`--hook blocks.6.hook_resid_post`) makes the LLM cheaper and the ratio larger.

    python benchmarks/multi_sae.py [--training-tokens 40960] [--hook blocks.12.hook_resid_post]
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
        )
        runner = MaskedLanguageModelSAETrainingRunner(single, override_model=model, override_dataset=corpus)
        start = time.perf_counter()
        runner.run()
        one = time.perf_counter() - start

        multi = MaskedMultiSAETrainingRunnerConfig(
            saes={
                f"k{k}": BatchTopKTrainingSAEConfig(
                    d_in=SAE_DEFAULTS["d_in"], d_sae=SAE_DEFAULTS["d_sae"], k=k, topk_threshold_lr=0.05
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
            **shared,
        )
        runner_multi = MaskedMultiSAETrainingRunner(multi, override_model=model, override_dataset=corpus)
        start = time.perf_counter()
        runner_multi.run()
        four = time.perf_counter() - start

    print(f"\nLLM in {llm_dtype}")
    print(f"{'run':<40} {'seconds':>8} {'tokens/s':>9}")
    print(f"{'1 SAE (k=32)':<40} {one:>8.1f} {args.training_tokens / one:>9.0f}")
    print(f"{f'{len(KS)} SAEs (k={KS}), one pass':<40} {four:>8.1f} {args.training_tokens / four:>9.0f}")
    print(
        f"{f'{len(KS)} separate runs (estimate)':<40} {len(KS) * one:>8.1f} {args.training_tokens / one / len(KS):>9.0f}"
    )
    print(
        f"{len(KS)} SAEs / 1 SAE = {four / one:.2f}x (target <= 1.3x); one shared pass saves "
        f"{1 - four / (len(KS) * one):.0%} of {len(KS)} separate runs"
    )


if __name__ == "__main__":
    main()
