"""Planning a recipe: runs grouped into jobs that share one masked LLM pass, shards, and the dry-run summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sae_lens import LoggingConfig

from sae_mask_plugin.calibration.settings import DEFAULT_CALIBRATION_TOKENS
from sae_mask_plugin.masking.config import MaskingConfig
from sae_mask_plugin.sweep.recipe import EMBEDDED_DATASET, Recipe, RecipeError, Run
from sae_mask_plugin.sweep.shard import Shard
from sae_mask_plugin.training.config import (
    MaskedMultiSAETrainingRunnerConfig,
    auxk_window_notice,
    mixing_buffer_notice,
)

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
SAE_STATE_COPIES = 4
"""Weights, gradients and Adam's two moments, per SAE parameter."""
SAE_RETAINED_COPIES = 2
"""Latent-sized tensors per training token that every SAE of a job keeps until all its SAEs have stepped: SAELens's
`MultiSAETrainer` holds each SAE's `TrainStepOutput` (`hidden_pre`, `feature_acts`) for the whole step."""
SAE_STEP_COPIES = 2
"""Further latent-sized tensors per token while one SAE steps (the gradients of those two); SAEs step one by one."""
LLM_LOAD_COPIES_ON_CPU = 2.35
"""LLM weight copies in memory while TransformerLens loads a model onto the CPU: it builds its own model from the
Hugging Face model's weights, so both exist at once, plus conversion copies (Gemma: a rescaled embedding and an
untied unembedding). Measured peaks above the process before the job: 1.9-2.0x the weights for the Pythia-160M
stand-in, 2.9-3.3x for the Gemma-2-2B stand-in (README); 2.35 keeps the estimate within 30 % of both. On a GPU
the Hugging Face copy stays in host memory."""
GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """Rough peak memory of one job, in GiB, on the training device (above what the process held before the job).

    `llm_load` is the extra LLM copy held while TransformerLens loads the model onto the CPU (0 on a GPU)."""

    llm: float | None
    buffer: float
    saes: float
    llm_load: float = 0.0

    @property
    def total(self) -> float:
        return (self.llm or 0.0) + self.llm_load + self.buffer + self.saes

    def describe(self) -> str:
        llm = "LLM not counted (set model_params)" if self.llm is None else f"LLM {self.llm:.2f}"
        load = f" + LLM load copy {self.llm_load:.2f}" if self.llm_load else ""
        return f"~{self.total:.2f} GiB ({llm}{load} + buffer {self.buffer:.2f} + SAEs {self.saes:.2f})"


@dataclass(frozen=True)
class Group:
    """One job: SAEs that train together from one masked LLM pass (same masking, seed and data order)."""

    name: str
    masking: MaskingConfig
    seed: int
    runs: tuple[Run, ...]

    @property
    def sae_parameters(self) -> int:
        """Encoder + decoder weights of the group's SAEs: a proxy of its cost per training token."""
        return sum(2 * run.sae.d_in * run.sae.d_sae for run in self.runs)

    def runner_config(
        self, recipe: Recipe, output_path: str | None = None, checkpoint_path: str | None = None
    ) -> MaskedMultiSAETrainingRunnerConfig:
        """The SAELens multi-SAE runner config of this job (W&B off unless `runner.logger` turns it on)."""
        settings = dict(recipe.runner)
        settings["model_from_pretrained_kwargs"] = {
            **(settings.get("model_from_pretrained_kwargs") or {}),
            "dtype": recipe.llm_dtype,
        }
        try:
            logger = LoggingConfig(
                **{
                    "log_to_wandb": False,
                    **settings.pop("logger", {}),
                    "run_name": f"{recipe.name}-{self.name}",
                }
            )
            return MaskedMultiSAETrainingRunnerConfig(
                saes={run.name: run.sae for run in self.runs},
                hook_names=recipe.hook_name,
                model_name=recipe.model_name,
                model_class_name=recipe.model_class_name,
                dataset_path="" if recipe.dataset == EMBEDDED_DATASET else recipe.dataset,
                training_tokens=recipe.training_tokens,
                seed=self.seed,
                masking=self.masking,
                output_path=output_path,
                checkpoint_path=checkpoint_path,
                logger=logger,
                **settings,
            )
        except (TypeError, ValueError) as error:
            raise RecipeError(f"runner settings of group {self.name}: {error}") from error

    def memory(self, recipe: Recipe) -> MemoryEstimate:
        """Rough peak memory: LLM weights (twice while loading onto a CPU) + mixing buffer (SAELens keeps
        `n_batches_in_buffer * context_size` rows, plus one LLM batch) + SAE training state + latent-sized
        tensors (kept for every SAE of the step, plus gradients for the SAE stepping; bfloat16 under autocast).
        Checked against CPU runs of the paper recipes on stand-in checkpoints (README); unmeasured on GPUs."""
        cfg = self.runner_config(recipe)
        act_bytes = DTYPE_BYTES.get(cfg.dtype, 4)
        llm = (
            None
            if recipe.model_params is None
            else recipe.model_params * DTYPE_BYTES.get(recipe.llm_dtype, 4)
        )
        on_cpu = str(cfg.llm_device or cfg.device).startswith("cpu")
        llm_load = (LLM_LOAD_COPIES_ON_CPU - 1) * llm if llm is not None and on_cpu else 0.0
        buffer_rows = (cfg.n_batches_in_buffer + cfg.store_batch_size_prompts) * cfg.context_size
        buffer = buffer_rows * recipe.d_in * act_bytes
        latent_bytes = DTYPE_BYTES["bfloat16"] if cfg.autocast else act_bytes
        per_token = [cfg.train_batch_size_tokens * run.sae.d_sae * latent_bytes for run in self.runs]
        state = sum(
            (2 * run.sae.d_in * run.sae.d_sae + run.sae.d_sae + run.sae.d_in)
            * SAE_STATE_COPIES
            * DTYPE_BYTES.get(run.sae.dtype, 4)
            for run in self.runs
        )
        saes = state + SAE_RETAINED_COPIES * sum(per_token) + SAE_STEP_COPIES * max(per_token)
        return MemoryEstimate(None if llm is None else llm / GIB, buffer / GIB, saes / GIB, llm_load / GIB)


def plan(recipe: Recipe) -> list[Group]:
    """Group the recipe's runs by shared LLM pass (in grid order), split by `max_saes_per_job`; every job's
    SAELens config is built and checked."""
    by_key: dict[tuple[str, int], list[Run]] = {}
    for run in recipe.runs:
        by_key.setdefault(run.group_key, []).append(run)
    groups: list[Group] = []
    for runs in by_key.values():
        name = f"{runs[0].masking_tag}-s{runs[0].seed}"
        size = recipe.max_saes_per_job or len(runs)
        chunks = [tuple(runs[start : start + size]) for start in range(0, len(runs), size)]
        for part, chunk in enumerate(chunks):
            label = name if len(chunks) == 1 else f"{name}-part{part}"
            groups.append(Group(label, runs[0].masking, runs[0].seed, chunk))
    for group in groups:
        group.runner_config(recipe)
    return groups


def pending_group(group: Group, is_done: Callable[[Run], bool]) -> Group | None:
    """The group without its finished runs; None when every run is finished."""
    pending = tuple(run for run in group.runs if not is_done(run))
    return replace(group, runs=pending) if pending else None


def estimated_seconds(recipe: Recipe, groups: Sequence[Group], evaluate_only: int = 0) -> tuple[float, float]:
    """(training, evals) wall seconds of `groups` on the machine of `recipe.measured_throughput` (the speeds in
    the recipe's LLM dtype): per group one LLM pass (plus the calibration pass) and each SAE's steps; evals of the
    first SAE, then of each further one, `evaluate_only` SAEs trained earlier among them."""
    speed = recipe.measured_throughput
    if speed is None:
        raise ValueError(f"recipe {recipe.name} has no {recipe.llm_dtype} throughput to estimate from")
    tokens = recipe.training_tokens
    calibration = (
        recipe.runner.get("calibration_tokens", DEFAULT_CALIBRATION_TOKENS)
        if recipe.runner.get("calibrate_threshold")
        else 0
    )
    training = sum(
        (tokens + calibration) / speed.llm_tokens_per_s + len(group.runs) * tokens / speed.sae_tokens_per_s
        for group in groups
    )
    n_saes = sum(len(group.runs) for group in groups) + evaluate_only
    evals = (
        speed.eval_seconds_first + (n_saes - 1) * speed.eval_seconds_each if recipe.evals and n_saes else 0.0
    )
    return training, evals


def duration(seconds: float) -> str:
    """`seconds` as minutes below an hour (`24 min`), else hours (`1.7 h`)."""
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def format_plan(
    recipe: Recipe,
    groups: Sequence[Group],
    shard: Shard | None = None,
    is_done: Callable[[Run], bool] | None = None,
    is_evaluated: Callable[[Run], bool] | None = None,
) -> str:
    """The dry-run plan: groups (one LLM pass each) with tokens and memory, their runs, and totals; with
    `is_done` each run's status and the time still to run, where a done (trained) run that is not `is_evaluated`
    still has its evals to run. Each predicate is asked once per run (`is_done` may load the SAE)."""
    selected = shard.select(groups) if shard is not None else list(groups)
    runs = [run for group in selected for run in group.runs]
    done = {run.name for run in runs if is_done(run)} if is_done is not None else set()
    awaiting_evals = {
        run.name for run in runs if run.name in done and is_evaluated is not None and not is_evaluated(run)
    }

    def status(run: Run) -> str:
        if is_done is None:
            return ""
        if run.name in awaiting_evals:
            return "  [trained; evals to run]"
        return "  [done]" if run.name in done else "  [todo]"

    tokens = recipe.training_tokens
    data = "embedded corpus" if recipe.dataset == EMBEDDED_DATASET else recipe.dataset
    lines = [
        f"recipe {recipe.name}: {recipe.description}".rstrip(": "),
        f"model {recipe.model_name}, hook {recipe.hook_name} (d_in {recipe.d_in}), data {data}, "
        f"{tokens:,} training tokens per run, device {recipe.device}, LLM in {recipe.llm_dtype} "
        f"({recipe.llm_dtype_reason})",
        f"{len(recipe.runs)} runs in {len(groups)} groups (one masked LLM pass each)"
        + (f"; shard {shard}: {len(selected)} groups, {len(runs)} runs" if shard is not None else ""),
        "",
    ]
    for group in selected:
        lines.append(f"group {group.name}: {len(group.runs)} SAEs, {group.memory(recipe).describe()}")
        lines += [f"  {run.name}{status(run)}" for run in group.runs]
    peak = max((group.memory(recipe).total for group in selected), default=0.0)
    lines += [
        "",
        f"total: {len(selected) * tokens:,} LLM tokens, {len(runs) * tokens:,} SAE training tokens, "
        f"peak memory per job ~{peak:.2f} GiB",
    ]
    if recipe.runner.get("calibrate_threshold"):
        tokens_read = recipe.runner.get("calibration_tokens", DEFAULT_CALIBRATION_TOKENS)
        lines.append(
            f"after each job: BatchTopK-family thresholds calibrated to L0 = k on {tokens_read:,} clean tokens"
        )
    if recipe.evals:
        lines.append(f"then evals: {', '.join(recipe.evals)} (preset {recipe.eval_preset})")
    if groups:
        runner = groups[0].runner_config(recipe)
        notices = (auxk_window_notice([run.sae for run in recipe.runs], runner), mixing_buffer_notice(runner))
        lines += [f"warning: {notice}" for notice in notices if notice]
    if emulated := recipe.emulated_bf16_notice():
        lines.append(emulated)
    if recipe.report:
        lines.append("then the comparison report once every run of the grid is done")
    speed = recipe.measured_throughput
    if speed is None and recipe.throughput:
        lines.append(
            f"no time estimate: the recipe's throughput is measured in {', '.join(recipe.throughput)} only, "
            f"not in {recipe.llm_dtype}"
        )
    if speed is not None:
        todo = [
            pending
            for group in selected
            if (pending := group if is_done is None else pending_group(group, lambda run: run.name in done))
            is not None
        ]
        training, evals = estimated_seconds(recipe, todo, len(awaiting_evals))
        lines.append(
            f"estimated time{' still to run' if is_done is not None else ''} on a {speed.machine} "
            f"({recipe.llm_dtype}): "
            f"~{duration(training + evals)} (training ~{duration(training)}, evals ~{duration(evals)}; "
            "from the recipe's measured throughput, on a machine running nothing else)"
        )
    return "\n".join(lines)


def progress_line(recipe: Recipe, groups: Sequence[Group], index: int, stage: str, elapsed: float) -> str:
    """One progress line of a local run: the stage of group `index` of `groups` (or the report when `index` is
    past them), the wall time so far and, from the recipe's throughput, an estimate of the time left (that group's
    training counted only before it ran, the first SAE's eval cost only in the first group)."""
    if index >= len(groups):
        return f"[{recipe.name}] every group done: the report; {duration(elapsed)} so far"
    group = groups[index]
    saes = f"{len(group.runs)} SAE" + ("" if len(group.runs) == 1 else "s")
    line = f"[{recipe.name}] group {index + 1}/{len(groups)} {group.name} ({saes}): {stage}"
    line += f"; {duration(elapsed)} so far"
    speed = recipe.measured_throughput
    if speed is None:
        return line
    training, evals = estimated_seconds(recipe, groups[index:])
    if stage == "evals":
        training -= estimated_seconds(recipe, groups[index : index + 1])[0]
    if index > 0 and recipe.evals:
        evals -= speed.eval_seconds_first - speed.eval_seconds_each
    return f"{line}, ~{duration(training + evals)} left (estimate from the recipe's throughput)"
