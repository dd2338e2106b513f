"""SAELens's `autocast` (bfloat16 matmuls in the SAE training step, float32 weights) vs float32, side by side.

For each width, one BatchTopK SAE training step (forward, loss, backward) on the same batch of activations, with
`torch.autocast(dtype=torch.bfloat16)` off and on: median step time, and how far the autocast step's loss and
encoder gradient are from float32 (relative error). Autocast is worth turning on where it is faster and its
errors are small; run it on the machine that trains. Activations are a sample of the embedded default's
`blocks.12` when `--real` is given, else Gaussian with the same width.

    python benchmarks/sae_autocast.py [--widths 2048,4096,16384] [--batch 2048] [--repeats 3] [--real]
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from sae_lens import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from sae_lens.saes.sae import TrainStepInput

from sae_mask_plugin.llm_dtype import default_llm_dtype

D_IN = 576


def step(sae: BatchTopKTrainingSAE, activations: torch.Tensor, autocast: bool) -> tuple[float, torch.Tensor]:
    """One training step's loss and encoder-weight gradient (the gradient is cleared afterwards)."""
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext()
    with context:
        output = sae.training_forward_pass(
            TrainStepInput(
                sae_in=activations,
                coefficients={},
                dead_neuron_mask=None,
                n_training_steps=0,
                is_logging_step=False,
            )
        )
    output.loss.backward()
    gradient = sae.W_enc.grad.detach().clone()
    sae.zero_grad()
    return float(output.loss.detach()), gradient


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--widths", default="2048,4096,16384")
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--real", action="store_true", help="activations of the embedded default at blocks.12"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.real:
        from sae_mask_plugin.calibration.threshold import calibration_activations
        from sae_mask_plugin.embedded.model import DEFAULT_HOOK, load_embedded_model

        activations = calibration_activations(
            load_embedded_model(), DEFAULT_HOOK, args.batch, show_progress=False
        )
    else:
        activations = torch.randn(args.batch, D_IN) * 10
    print(f"CPU: default LLM dtype {default_llm_dtype().describe()}; threads {torch.get_num_threads()}")
    print(
        f"{'width':>6} {'float32 s':>10} {'autocast s':>11} {'speed-up':>9} {'loss rel. err':>14} {'grad rel. err':>14}"
    )
    for width in (int(value) for value in args.widths.split(",")):
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=width, k=args.k))
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for autocast in (False, True):  # interleaved: both see the same machine load
                start = time.perf_counter()
                step(sae, activations, autocast)
                times[autocast].append(time.perf_counter() - start)
        loss32, gradient32 = step(sae, activations, False)
        loss16, gradient16 = step(sae, activations, True)
        plain, mixed = statistics.median(times[False]), statistics.median(times[True])
        gradient_error = float((gradient16 - gradient32).norm() / gradient32.norm())
        print(
            f"{width:>6} {plain:>10.3f} {mixed:>11.3f} {plain / mixed:>8.2f}x "
            f"{abs(loss16 - loss32) / abs(loss32):>14.2e} {gradient_error:>14.2e}"
        )


if __name__ == "__main__":
    main()
