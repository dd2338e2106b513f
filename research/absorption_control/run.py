"""Run the control cell by cell (one JSON each, so a stopped run resumes) and summarise it into `results.json`.

A cell trains one SAE on the synthetic world with `train_toy_sae` (or leaves it at its initialisation: the
random-SAE null), draws clean evaluation data, and stores true absorption (both hierarchies) and the true dropped
share, SAEBench's measured absorption and the eval's dropped rate with their per-letter numbers, the SAE's
explained variance and L0, and the samples it trained on.
"""

from __future__ import annotations

import functools
import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from sae_bench.evals.absorption.probing import LinearProbe
from sae_lens import SAE
from sae_lens.registry import get_sae_training_class
from sae_lens.saes.sae import TrainingSAE
from sae_lens.synthetic import FeatureDictionary, train_toy_sae

from research.absorption_control.config import (
    NUM_LETTERS,
    ControlConfig,
    ControlConfigError,
    MeasureConfig,
    SAESpec,
    WorldConfig,
)
from research.absorption_control.metrics import (
    measured_absorption,
    train_letter_probe,
    true_absorption,
)
from research.absorption_control.synthetic import build_feature_dictionary, build_generator
from sae_mask_plugin.files import write_json_atomic

EVAL_SEED_OFFSET = 10_000
"""Evaluation data use seed + this, so they never repeat the training draws."""
SAMPLE_BATCH = 20_000


def build_training_sae(spec: SAESpec) -> TrainingSAE[Any]:
    """A freshly initialised SAELens training SAE of `spec`'s architecture (from SAELens's registry)."""
    sae_class, cfg_class = get_sae_training_class(spec.architecture)
    extra: dict[str, Any] = {}
    if spec.architecture == "matryoshka_batchtopk":
        extra["matryoshka_widths"] = [spec.width // 4, spec.width // 2, spec.width]
    torch.manual_seed(spec.seed)
    cfg = cfg_class(d_in=spec.hidden_dim, d_sae=spec.width, k=spec.k, device="cpu", **extra)  # type: ignore[call-arg]
    return sae_class(cfg)


def inference_sae(sae: TrainingSAE[Any]) -> SAE[Any]:
    """The inference SAE SAELens would save (BatchTopK becomes JumpReLU with its learned threshold)."""
    with tempfile.TemporaryDirectory() as folder:
        sae.save_inference_model(folder)
        return SAE.load_from_disk(folder, device="cpu")


def draw_eval_data(
    world: WorldConfig, feature_dict: FeatureDictionary, train_words: int, test_words: int, seed: int
) -> dict[str, torch.Tensor]:
    """Clean samples: `features` [n, F] and `hidden` [n, d] for the truth, and the probe's words (samples with a
    letter) split into train/test, at least `train_words` / `test_words` per letter."""
    torch.manual_seed(seed + EVAL_SEED_OFFSET)
    generator = build_generator(world)
    batches = []
    counts = torch.zeros(NUM_LETTERS)
    while counts.min() < train_words + test_words:
        batch = generator.sample(SAMPLE_BATCH)
        counts += (batch[:, :NUM_LETTERS] > 0).sum(dim=0)
        batches.append(batch)
    features = torch.cat(batches)
    with torch.no_grad():
        hidden = feature_dict(features)
    has_letter = (features[:, :NUM_LETTERS] > 0).any(dim=1)
    letters = features[:, :NUM_LETTERS].argmax(dim=1)
    rank = torch.zeros_like(letters)  # the position of each word among its letter's words
    for letter in range(NUM_LETTERS):
        rows = (letters == letter) & has_letter
        rank[rows] = torch.arange(int(rows.sum()))
    train = has_letter & (rank < train_words)
    test = has_letter & (rank >= train_words) & (rank < train_words + test_words)
    return {
        "features": features,
        "hidden": hidden,
        "train_acts": hidden[train],
        "train_letters": letters[train],
        "test_acts": hidden[test],
        "test_letters": letters[test],
    }


@torch.no_grad()
def reconstruction_stats(sae: SAE[Any], hidden: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Latent activations [n, width], explained variance and mean L0 on `hidden` [n, d]."""
    latents = torch.cat([sae.encode(chunk) for chunk in hidden.split(SAMPLE_BATCH)])
    reconstruction = sae.decode(latents)
    residual = (hidden - reconstruction).pow(2).sum()
    total = (hidden - hidden.mean(dim=0)).pow(2).sum()
    return latents, {
        "explained_variance": float(1 - residual / total),
        "l0": float((latents > 0).float().sum(dim=1).mean()),
    }


@functools.lru_cache(maxsize=4)
def world_sample(
    world: WorldConfig, measure: MeasureConfig, hidden_dim: int, seed: int
) -> tuple[FeatureDictionary, dict[str, torch.Tensor], LinearProbe]:
    """What every SAE of one (d, seed) shares: the feature dictionary, the clean evaluation data and the letter
    probe trained on them (the probe reads activations only, as SAEBench's reads the LLM)."""
    feature_dict = build_feature_dictionary(world, hidden_dim, seed)
    data = draw_eval_data(
        world, feature_dict, measure.train_words_per_letter, measure.test_words_per_letter, seed
    )
    torch.manual_seed(seed)
    probe = train_letter_probe(
        data["train_acts"],
        data["train_letters"],
        data["test_acts"],
        data["test_letters"],
        measure.probe_batch_size,
    )
    return feature_dict, data, probe


def run_cell(spec: SAESpec, config: ControlConfig, trained: bool = True) -> dict[str, Any]:
    """Train (or not) one SAE and measure it; the cell's JSON record."""
    world, measure = config.world, config.measure
    feature_dict, data, probe = world_sample(world, measure, spec.hidden_dim, spec.seed)
    training_sae = build_training_sae(spec)
    training_samples = config.training_samples_of(spec) if trained else 0
    if trained:
        torch.manual_seed(spec.seed)
        train_toy_sae(
            training_sae,
            feature_dict,
            build_generator(world, spec.modifier),
            training_samples=training_samples,
            batch_size=config.batch_size,
            lr=config.lr,
        )
    sae = inference_sae(training_sae)
    latents, quality = reconstruction_stats(sae, data["hidden"])
    decoder = sae.W_dec.detach()
    truths = {
        hierarchy.kind: true_absorption(
            data["features"],
            latents,
            decoder,
            feature_dict.feature_vectors.detach(),
            hierarchy,
            measure.true_cos_threshold,
        )
        for hierarchy in (world.intrinsic_hierarchy(), world.contextual_hierarchy())
    }
    torch.manual_seed(spec.seed)
    measured = measured_absorption(
        sae,
        probe,
        data["train_acts"],
        data["train_letters"],
        data["test_acts"],
        data["test_letters"],
        measure,
    )
    intrinsic = truths["intrinsic"]
    for detail in measured["letters"]:
        detail["true_absorption"] = intrinsic.by_parent.get(detail["parent_feature"])
        detail["true_dropped"] = intrinsic.dropped.get(detail["parent_feature"])
    return {
        "name": spec.name,
        "trained": trained,
        "spec": asdict(spec),
        "training_samples": training_samples,
        **quality,
        "true_absorption_intrinsic": intrinsic.mean,
        "true_absorption_contextual": truths["contextual"].mean,
        "parent_silent_intrinsic": statistics.mean(intrinsic.parent_silent.values()),
        "true_dropped_intrinsic": statistics.mean(intrinsic.dropped.values()),
        "true_by_parent": {kind: truth.by_parent for kind, truth in truths.items()},
        "measured": measured,
    }


def cell_path(cells_dir: Path, spec: SAESpec, trained: bool) -> Path:
    return cells_dir / f"{'' if trained else 'random-'}{spec.name}.json"


def planned_cells(config: ControlConfig) -> list[tuple[str, SAESpec, bool]]:
    """(part, spec, trained) of every cell, so that a partial run holds what the mechanism test and the paired
    check need first: the random null of the mechanism shape; the unmodified SAE and the first of
    `mechanism_kinds` seed by seed (a pair per seed); the other kinds in order, each over every seed; then the
    rest of the grid and its nulls, seed by seed."""
    mechanism = config.mechanism_specs()
    cells = [("grid", spec, True) for spec in config.grid_specs() if spec not in mechanism]
    cells += [("random", spec, False) for spec in config.random_specs()]
    cells += [("mechanism", spec, True) for spec in mechanism]
    mechanism_shape = (config.mechanism_architecture, config.mechanism_hidden_dim, config.mechanism_width)

    def priority(cell: tuple[str, SAESpec, bool]) -> tuple[int, int, int, int, float]:
        part, spec, _ = cell
        if part == "mechanism":
            modifier = spec.modifier
            rank = 0 if modifier is None else 1 + config.mechanism_kinds.index(modifier.kind)
            return 1, max(rank - 1, 0), spec.seed, rank, 0.0 if modifier is None else modifier.p
        if part == "random" and (spec.architecture, spec.hidden_dim, spec.width) == mechanism_shape:
            return 0, 0, spec.seed, 0, 0.0
        return 2, 0, spec.seed, 0, 0.0

    return sorted(cells, key=priority)


def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A cells folder's recorded config with the settings added since it was written at their defaults (which
    reproduce what those cells ran: e.g. uniform word probabilities, the grid's seeds for the mechanism test)."""
    defaults = json.loads(json.dumps(asdict(ControlConfig())))

    def merge(recorded: Any, default: Any) -> Any:
        if isinstance(recorded, dict) and isinstance(default, dict):
            return {
                key: merge(recorded[key], default.get(key)) if key in recorded else default[key]
                for key in {*recorded, *default}
            }
        return recorded

    return merge(stored, defaults)


def run_cells(
    config: ControlConfig,
    cells_dir: Path,
    log: Callable[[str], None] = print,
    run_missing: bool = True,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, list[dict[str, Any]]]:
    """The records of every cell (grid, random null, mechanism test): read from `cells_dir` when there, else
    computed (those with index % shard[1] == shard[0]) unless `run_missing` is off."""
    settings = json.loads(json.dumps(asdict(config)))
    settings_path = cells_dir / "config.json"
    if not settings_path.exists():
        write_json_atomic(settings_path, settings)
    elif with_defaults(json.loads(settings_path.read_text())) != settings:
        raise ControlConfigError(
            f"{cells_dir} holds cells of a different config; choose another cells folder"
        )
    records: dict[str, list[dict[str, Any]]] = {"grid": [], "random": [], "mechanism": []}
    grid = config.grid_specs()
    for index, (part, spec, trained) in enumerate(planned_cells(config)):
        path = cell_path(cells_dir, spec, trained)
        if not path.exists() and run_missing and index % shard[1] == shard[0]:
            log(f"{part}: {path.stem}")
            write_json_atomic(path, run_cell(spec, config, trained))
        if path.exists():
            record = json.loads(path.read_text())
            records[part].append(record)
            if part == "mechanism" and spec in grid:  # the unmodified mechanism SAE is also a grid cell
                records["grid"].append(record)
    return records
