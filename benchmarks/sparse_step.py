"""The sparse training step of the TopK family (`training.sparse_step`) against SAELens's own step, side by side.

Speed: one training step (forward, loss with AuxK, backward, Adam) on the same batch, SAELens's step and the sparse
one interleaved `--repeats` times, per architecture, width, k and share of dead latents: ms per token and the
ratio. Quality (`--quality-tokens N`): SAEs of `--quality-architecture` trained with SAELens's `SAETrainer` on N
tokens of real activations of the embedded default (`--hook`), SAELens's step at seeds 0 and 1 and the sparse step
at seed 0, then L0, explained variance and alive fraction on held-out activations: the sparse step is kept where
its difference from SAELens's step at the same seed is within the seed-to-seed difference. Profile (`--profile`):
where the sparse step's time goes (`torch.profiler`, the operators' self CPU time over `--repeats` steps, grouped
into the step's parts), per architecture, width and k.

    python benchmarks/sparse_step.py [--architectures topk,batchtopk,matryoshka_batchtopk] [--widths 4096,8192]
        [--k 8,32] [--repeats 5] [--quality-tokens 262144 --quality-architecture topk] [--profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator

import torch
from sae_lens import SAE
from sae_lens.config import LoggingConfig, SAETrainerConfig
from sae_lens.registry import get_sae_training_class
from sae_lens.saes.sae import TrainingSAE, TrainStepInput
from sae_lens.training.sae_trainer import SAETrainer

from sae_mask_plugin.training.defaults import complete_sae_config, sae_config_kwargs
from sae_mask_plugin.training.sparse_step import SPARSE_STEP_ARCHITECTURES, with_sparse_step

D_IN = 576
BATCH = 2048
HELD_OUT = 16_384


def make_sae(architecture: str, width: int, k: int) -> TrainingSAE:
    """A training SAE of the plugin's short-run settings (Matryoshka: its default widths)."""
    sae_class, config_class = get_sae_training_class(architecture)
    kwargs = sae_config_kwargs(config_class, d_in=D_IN, d_sae=width, k=k)
    return sae_class(complete_sae_config(config_class(**kwargs)))


def step_seconds(
    sae: TrainingSAE, x: torch.Tensor, dead: torch.Tensor, optimizer: torch.optim.Optimizer
) -> float:
    """Wall seconds of one training step."""
    started = time.perf_counter()
    optimizer.zero_grad()
    output = sae.training_forward_pass(TrainStepInput(x, {}, dead, 1, False))
    output.loss.backward()
    optimizer.step()
    return time.perf_counter() - started


def speed(architectures: list[str], widths: list[int], ks: list[int], repeats: int) -> None:
    """Print ms per token of both steps and their ratio, measured interleaved."""
    print(
        f"{'architecture':>20} {'width':>6} {'k':>4} {'dead':>5} {'SAELens ms/token':>17} {'sparse ms/token':>16} "
        f"{'speedup':>8}"
    )
    for architecture, width, k, dead_share in (
        (a, w, k, d) for a in architectures for w in widths for k in ks for d in (0.0, 0.1)
    ):
        torch.manual_seed(0)
        dense = make_sae(architecture, width, k)
        sparse = with_sparse_step(dense)
        x = torch.randn(BATCH, D_IN)
        dead = torch.rand(width) < dead_share
        optimizers = {
            name: torch.optim.Adam(sae.parameters(), lr=1e-4)
            for name, sae in (("dense", dense), ("sparse", sparse))
        }
        times: dict[str, list[float]] = {"dense": [], "sparse": []}
        for repeat in range(repeats + 1):
            for name, sae in (("dense", dense), ("sparse", sparse)):
                seconds = step_seconds(sae, x, dead, optimizers[name])
                if repeat:  # the first step warms up
                    times[name].append(seconds)
        ms = {name: statistics.median(values) / BATCH * 1000 for name, values in times.items()}
        print(
            f"{architecture:>20} {width:>6} {k:>4} {dead_share:>5.0%} {ms['dense']:>17.3f} {ms['sparse']:>16.3f} "
            f"{ms['dense'] / ms['sparse']:>7.2f}x",
            flush=True,
        )


STEP_PARTS = {
    "dense products (encoder)": ("aten::mm", "aten::addmm", "aten::matmul", "aten::linear"),
    "latent selection": (
        "aten::topk",
        "aten::sort",
        "aten::kthvalue",
        "aten::gt",
        "aten::ge",
        "aten::nonzero",
    ),
    "sparse decode and gradients": (
        "aten::embedding_bag",
        "aten::_embedding_bag",
        "aten::index_add_",
        "aten::bmm",
    ),
    "gather and scatter": (
        "aten::index",
        "aten::index_select",
        "aten::gather",
        "aten::scatter",
        "aten::take",
    ),
    "optimizer (Adam)": (
        "aten::_fused_adam_",
        "aten::_foreach_",
        "aten::addcdiv_",
        "aten::lerp_",
        "aten::sqrt",
    ),
}
"""The parts of a step, each the operators (name prefixes) that carry it; the rest is elementwise and bookkeeping."""


def step_part(operator: str) -> str:
    """The step part an operator belongs to (`STEP_PARTS`), or `elementwise and other`."""
    for part, prefixes in STEP_PARTS.items():
        if any(operator.startswith(prefix) for prefix in prefixes):
            return part
    return "elementwise and other"


def profile(architectures: list[str], widths: list[int], ks: list[int], repeats: int) -> None:
    """Print each part's share of the sparse step's self CPU time and its ms per token, and the top operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for architecture, width, k in ((a, w, k) for a in architectures for w in widths for k in ks):
        torch.manual_seed(0)
        sae = with_sparse_step(make_sae(architecture, width, k))
        x = torch.randn(BATCH, D_IN)
        dead = torch.rand(width) < 0.1
        optimizer = torch.optim.Adam(sae.parameters(), lr=1e-4)
        step_seconds(sae, x, dead, optimizer)  # warm-up
        with torch_profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(repeats):
                step_seconds(sae, x, dead, optimizer)
        events = [event for event in profiler.key_averages() if event.self_cpu_time_total > 0]
        total = sum(event.self_cpu_time_total for event in events)
        parts: dict[str, float] = {}
        for event in events:
            parts[step_part(event.key)] = parts.get(step_part(event.key), 0.0) + event.self_cpu_time_total
        per_token_ms = total / 1000 / repeats / BATCH
        print(
            f"\n{architecture} w{width} k{k}, sparse step, 10 % dead: {per_token_ms:.3f} ms/token (profiled)"
        )
        for part, microseconds in sorted(parts.items(), key=lambda item: -item[1]):
            print(
                f"  {part:<30} {microseconds / total:>6.1%} {per_token_ms * microseconds / total:>8.4f} ms/token"
            )
        top = sorted(events, key=lambda event: -event.self_cpu_time_total)[:8]
        print("  top operators: " + ", ".join(f"{e.key} {e.self_cpu_time_total / total:.0%}" for e in top))


def batches(acts: torch.Tensor, seed: int) -> Iterator[torch.Tensor]:
    """Shuffled `[BATCH, D_IN]` batches of `acts`, epoch after epoch."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        for index in torch.randperm(len(acts), generator=generator).split(BATCH):
            if len(index) == BATCH:
                yield acts[index]


@torch.no_grad()
def held_out_metrics(sae: TrainingSAE, acts: torch.Tensor) -> dict[str, float]:
    """L0, explained variance and alive fraction on `acts` [n, D_IN]."""
    latents = sae.encode(acts)
    recon = sae.decode(latents)
    residual = (acts - recon).pow(2).sum() / (acts - acts.mean(dim=0)).pow(2).sum()
    return {
        "L0": float((latents > 0).sum(dim=1).float().mean()),
        "EV": float(1 - residual),
        "alive": float((latents > 0).any(dim=0).float().mean()),
    }


def train(
    acts: torch.Tensor, architecture: str, width: int, k: int, tokens: int, seed: int, sparse: bool
) -> tuple[dict, float]:
    """An SAE trained with SAELens's trainer (AuxK window 50 steps), its held-out metrics and tokens/s; BatchTopK
    SAEs are scored as saved (JumpReLU at their learned threshold)."""
    torch.manual_seed(seed)
    sae = make_sae(architecture, width, k)
    sae.b_dec.data.copy_(acts[:65_536].mean(dim=0))
    sae = with_sparse_step(sae) if sparse else sae
    trainer_cfg = SAETrainerConfig(
        total_training_samples=tokens,
        train_batch_size_samples=BATCH,
        lr=4e-3,
        lr_end=4e-3,
        dead_feature_window=50,
        n_checkpoints=0,
        logger=LoggingConfig(log_to_wandb=False),
    )
    trainer = SAETrainer(
        cfg=trainer_cfg,
        sae=sae,
        data_provider=batches(acts[:-HELD_OUT], seed),
        save_checkpoint_fn=lambda _: None,
    )
    started = time.perf_counter()
    trainer.fit()
    rate = tokens / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        sae.save_inference_model(folder)
        saved = SAE.load_from_disk(folder)
    return held_out_metrics(saved, acts[-HELD_OUT:]), rate


def quality(hook: str, architecture: str, width: int, k: int, tokens: int) -> None:
    """Print the held-out metrics of SAELens's step (seeds 0, 1) and the sparse step (seed 0)."""
    from sae_mask_plugin.clean_activations import clean_token_activations
    from sae_mask_plugin.embedded.corpus import load_embedded_corpus
    from sae_mask_plugin.embedded.model import load_embedded_model
    from sae_mask_plugin.llm_dtype import default_llm_dtype

    model = load_embedded_model(dtype=getattr(torch, default_llm_dtype().dtype))
    texts = load_embedded_corpus(seed=0, show_progress=False)["text"][:20_000]
    acts = clean_token_activations(model, hook, texts, tokens + HELD_OUT, 128, (2, None)).float()
    del model
    runs = {
        "SAELens step, seed 0": train(acts, architecture, width, k, tokens, 0, sparse=False),
        "sparse step, seed 0": train(acts, architecture, width, k, tokens, 0, sparse=True),
        "SAELens step, seed 1": train(acts, architecture, width, k, tokens, 1, sparse=False),
    }
    print(f"\n{architecture} w{width} k{k} at {hook}, {tokens:,} training tokens, held-out {HELD_OUT:,}:")
    print(f"{'run':<22} {'L0':>7} {'EV':>7} {'alive':>7} {'tokens/s':>9}")
    for name, (metrics, rate) in runs.items():
        print(f"{name:<22} {metrics['L0']:>7.2f} {metrics['EV']:>7.4f} {metrics['alive']:>7.4f} {rate:>9.0f}")
    reference = runs["SAELens step, seed 0"][0]
    for name in ("sparse step, seed 0", "SAELens step, seed 1"):
        differences = ", ".join(
            f"{key} {runs[name][0][key] - reference[key]:+.4f}" for key in ("EV", "alive")
        )
        print(f"{name} - SAELens step, seed 0: {differences}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--architectures", default=",".join(SPARSE_STEP_ARCHITECTURES))
    parser.add_argument("--widths", default="4096,8192")
    parser.add_argument("--k", default="8,32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quality-tokens", type=int, default=0, help="0: speed only")
    parser.add_argument("--quality-architecture", default="topk", choices=SPARSE_STEP_ARCHITECTURES)
    parser.add_argument("--hook", default="blocks.6.hook_resid_post")
    parser.add_argument(
        "--profile", action="store_true", help="where the sparse step's time goes, not the speed"
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    print(f"threads: {torch.get_num_threads()}, batch {BATCH} tokens, d_in {D_IN}")
    widths = [int(width) for width in args.widths.split(",")]
    ks = [int(k) for k in args.k.split(",")]
    if args.profile:
        profile(args.architectures.split(","), widths, ks, args.repeats)
        return
    speed(args.architectures.split(","), widths, ks, args.repeats)
    if args.quality_tokens:
        quality(args.hook, args.quality_architecture, widths[-1], ks[0], args.quality_tokens)


if __name__ == "__main__":
    main()
