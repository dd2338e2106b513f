"""Run a paper recipe end to end on CPU on STAND-IN checkpoints under the real hub names, and measure it.

    python -m research.paper_recipe_standin paper_pythia160m --hf-home /tmp/standin-hf --out /tmp/standin-run
    python -m research.paper_recipe_standin paper_gemma2_2b --hf-home /tmp/standin-hf --out /tmp/standin-run

It builds the stand-ins if they are missing (`research/hub_standins.py`: random weights with the exact
architecture, a stand-in tokenizer, stand-in Pile texts), then, with `HF_HOME` pointing there and the hub off
(`HF_HUB_OFFLINE=1`), runs `sae-mask sweep RECIPE` with `SMALL_OVERRIDES` (tiny token counts and widths, CPU,
one baseline and one masked SAE; every stage kept: training, core / absorption / sparse-probing / OOD evals,
SCR/TPP, report). It prints and writes `<out>/standin_measurements.json`: peak resident memory (whole process and
during training above the pre-training baseline), the LLM load time, training tokens/s without the load, and
the dry run's memory estimate for the same settings. Numbers describe the pipeline on this CPU, not the models.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

SMALL_OVERRIDES: dict[str, Any] = {
    "training_tokens": 8192,
    "runner.device": "cpu",
    "runner.llm_device": "cpu",
    "runner.context_size": 128,
    "runner.store_batch_size_prompts": 8,
    "runner.n_batches_in_buffer": 8,
    "runner.train_batch_size_tokens": 512,
    "runner.lr_warm_up_steps": 0,
    "runner.lr_decay_steps": 0,
    "grid": [{"architecture": "matryoshka_batchtopk", "d_sae": 256, "k": 8, "p": [0.0, 0.3], "seed": 0}],
    "eval_preset": "cpu",
    "eval_options": {"ood_tasks": ["87_glue_cola"], "sparse_probing_datasets": ["5_hist_fig_ismale"]},
    "eval_configs": {
        "absorption": {"words_per_letter": 4, "llm_batch_size": 16},
        "core": {"n_eval_reconstruction_batches": 1, "n_eval_sparsity_variance_batches": 1},
        "ood": {"num_train": 100, "num_id_test": 50, "num_ood_test": 50},
        "sparse_probing": {"num_train": 100, "num_test": 50},
    },
}
"""`--set` overrides of the paper recipes for a CPU run in minutes: 8,192 training tokens per SAE, width 256,
k 8, p in {0, 0.3}, contexts of 128 tokens, and the smallest eval sizes that still run every eval."""

RECIPE_MODELS = {"paper_pythia160m": "pythia-160m-deduped", "paper_gemma2_2b": "gemma-2-2b"}
GIB = 2**30


def offline_environment(hf_home: Path) -> dict[str, str]:
    """The environment under which the stand-ins are found by their hub names, with the hub switched off."""
    return {
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


class PeakMemory:
    """Samples this process's resident memory in a thread; `mark()` starts a new phase with its own peak."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.phase_start = self.phase_peak = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        return self._process.memory_info().rss

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.phase_peak = max(self.phase_peak, self.rss())

    def mark(self) -> tuple[int, int]:
        """End the current phase: returns (its starting RSS, its peak RSS), and starts the next one."""
        self.phase_peak = max(self.phase_peak, self.rss())
        ended = (self.phase_start, self.phase_peak)
        self.phase_start = self.phase_peak = self.rss()
        return ended

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run(recipe_name: str, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run the recipe in this process (the environment is already offline) and measure each phase."""
    from transformer_lens import HookedTransformer

    import sae_mask_plugin.sweep.execute as execute
    from sae_mask_plugin.sweep.plan import format_plan, plan
    from sae_mask_plugin.sweep.recipe import load_recipe

    recipe = load_recipe(recipe_name, overrides)
    groups = plan(recipe)
    estimates = {group.name: group.memory(recipe) for group in groups}
    print(format_plan(recipe, groups))
    memory = PeakMemory()
    phases: list[dict[str, Any]] = []
    load_seconds: list[float] = []

    original_load = HookedTransformer.from_pretrained_no_processing.__func__

    def timed_load(cls, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original_load(cls, *args, **kwargs)
        finally:
            load_seconds.append(time.perf_counter() - started)

    def measured(phase: str, function):
        def wrapper(recipe_arg, group, *args, **kwargs):
            memory.mark()
            loads_before, started = len(load_seconds), time.perf_counter()
            result = function(recipe_arg, group, *args, **kwargs)
            seconds = time.perf_counter() - started
            start_rss, peak_rss = memory.mark()
            load = sum(load_seconds[loads_before:])
            record = {
                "phase": phase,
                "group": group.name,
                "seconds": round(seconds, 1),
                "llm_load_seconds": round(load, 1),
                "rss_before_gib": round(start_rss / GIB, 3),
                "peak_rss_gib": round(peak_rss / GIB, 3),
                "peak_above_before_gib": round((peak_rss - start_rss) / GIB, 3),
            }
            if phase == "train":
                tokens = recipe.training_tokens
                record["llm_tokens"] = tokens
                record["tokens_per_s_without_load"] = round(tokens / max(seconds - load, 1e-9), 1)
                record["estimate_gib"] = round(estimates[group.name].total, 3)
                record["estimate"] = estimates[group.name].describe()
            phases.append(record)
            print(json.dumps(record))
            return result

        return wrapper

    HookedTransformer.from_pretrained_no_processing = classmethod(timed_load)
    execute.train_group = measured("train", execute.train_group)
    execute.evaluate_group = measured("evals", execute.evaluate_group)
    started = time.perf_counter()
    try:
        execute.run_shard(recipe, out)
    finally:
        memory.stop()
    return {
        "note": "CPU run on STAND-IN checkpoints (random weights, stand-in tokenizer, stand-in Pile texts)",
        "recipe": recipe_name,
        "overrides": overrides,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "process_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 3),
        "phases": phases,
        "report": str(out / "report" / "report.md") if (out / "report" / "report.md").is_file() else None,
    }


def label_outputs(out: Path, note: str) -> None:
    """Say in the run's own outputs that it ran on stand-ins: `STANDIN.txt`, a banner atop `report/report.md`
    and a `standin` entry in `report/results.json`."""
    (out / "STANDIN.txt").write_text(note + "\n")
    report = out / "report" / "report.md"
    if report.is_file() and not report.read_text().startswith("> STAND-IN"):
        report.write_text(f"> {note}\n\n{report.read_text()}")
    results = out / "report" / "results.json"
    if results.is_file():
        results.write_text(json.dumps({"standin": note, **json.loads(results.read_text())}, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", choices=sorted(RECIPE_MODELS))
    parser.add_argument(
        "--hf-home", required=True, help="Hugging Face home holding (or to hold) the stand-ins"
    )
    parser.add_argument("--out", required=True, help="sweep output folder")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    hf_home = Path(args.hf_home).expanduser().resolve()
    os.environ.update(offline_environment(hf_home))  # before any Hugging Face library is imported
    from research.hub_standins import STANDIN_NOTE, build_all
    from sae_mask_plugin.sweep.cli import parse_override

    build_all(hf_home, [RECIPE_MODELS[args.recipe]])
    overrides = {**SMALL_OVERRIDES, **dict(parse_override(text) for text in args.extra)}
    out = Path(args.out)
    summary = run(args.recipe, out, overrides)
    model = RECIPE_MODELS[args.recipe]
    label_outputs(out, f"{STANDIN_NOTE}; its numbers describe the pipeline, not the real {model}")
    (out / "standin_measurements.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
