"""A masked training on the tiny model, run as a subprocess by test_interruption.py.

    python interruptible_training.py OUT [--pause-at llm:N | step:N | save] [--resume CHECKPOINT]

Appends every token batch the LLM receives to OUT/llm_inputs.jsonl. `--pause-at` the N-th LLM batch, the N-th
training step (both counted from 1 in this process) or the final SAE save writes OUT/paused and sleeps there, so
that the test can send a signal at that point. A training batch of 64 tokens makes each buffer refill serve
several batches, so that a checkpoint holds unserved rows of the mixing buffer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import datasets
import torch
from sae_lens.saes.sae import TrainingSAE
from sae_lens.training.sae_trainer import SAETrainer
from tiny_transformer import build_tiny_model
from training_helpers import REPO_NAME_ID, tiny_runner_settings, tiny_sae
from transformer_lens import HookedTransformer

from sae_mask_plugin import MaskedLanguageModelSAETrainingRunner, MaskingConfig, make_runner_config
from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
from sae_mask_plugin.training.preflight import load_tokenizer

PAUSE_SECONDS = 30.0


def tiny_model() -> HookedTransformer:
    """The tests' shared `tiny_model` (same seed, same weights)."""
    tokenizer = load_tokenizer(EMBEDDED_MODEL_NAME)
    return build_tiny_model(tokenizer)


def token_rows() -> datasets.Dataset:
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(100, 5000, (400, 32), generator=generator)
    rows[:, 0] = 1
    return datasets.Dataset.from_dict({"tokens": rows.tolist()})


def pause(out: Path, runner: MaskedLanguageModelSAETrainingRunner) -> None:
    """Signal the test that this point is reached and wait (at most `PAUSE_SECONDS`) for its signal."""
    (out / "paused").touch()
    deadline = time.monotonic() + PAUSE_SECONDS
    while runner.stop_request.signum is None and time.monotonic() < deadline:
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--pause-at", default=None)
    parser.add_argument("--resume", default=None)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    cfg = make_runner_config(
        "topk",
        masking=MaskingConfig(p=0.3, mask_token=REPO_NAME_ID),
        sae=tiny_sae("topk"),
        **tiny_runner_settings(
            out,
            is_dataset_tokenized=True,
            train_batch_size_tokens=64,
            resume_from_checkpoint=args.resume,
            # every position, so that the first interruption leaves restored mixing-buffer rows to serve
            seqpos_slice=(None,),
        ),
    )
    runner = MaskedLanguageModelSAETrainingRunner(cfg, override_model=model, override_dataset=token_rows())

    inputs = (out / "llm_inputs.jsonl").open("a")
    where, _, count = (args.pause_at or "").partition(":")
    pause_at_batch = int(count) if where == "llm" else None
    fed = 0

    def record(_module, hook_args):
        nonlocal fed
        fed += 1
        inputs.write(json.dumps(hook_args[0].tolist()) + "\n")
        inputs.flush()
        if fed == pause_at_batch:
            pause(out, runner)

    model.embed.register_forward_pre_hook(record)
    if where == "step":
        step = SAETrainer.step
        steps = 0

        def paused_step(trainer, batch):
            nonlocal steps
            steps += 1
            if steps == int(count):
                pause(out, runner)
            return step(trainer, batch)

        SAETrainer.step = paused_step  # type: ignore[method-assign]
    if where == "save":
        save_inference_model = TrainingSAE.save_inference_model

        def paused_save(sae, path):
            pause(out, runner)
            return save_inference_model(sae, path)

        TrainingSAE.save_inference_model = paused_save  # type: ignore[method-assign]
    runner.run()


if __name__ == "__main__":
    sys.exit(main())
