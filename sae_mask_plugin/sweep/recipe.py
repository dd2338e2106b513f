"""Recipes: one YAML file per experiment, validated into a `Recipe` and expanded into `Run`s (no model load).

A recipe fixes the model, hook, data, token budget and SAELens runner settings, and lists one or more grid
blocks. Each block is a Cartesian product over axes: `architecture`, `seed`, any `MaskingConfig` field (`p`,
`strategy`, `loss_positions`, ...) and any field of the SAELens training config of every architecture in the block
(`d_sae`, `k`, `l1_coefficient`, ...). The union of the blocks is the grid; a run that appears twice is an error.
A run with p = 0 is a baseline: its other masking settings are dropped, so baselines go in their own block.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import yaml

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.evals.absorption.letter_set import LetterSetError, LetterSetRule
from sae_mask_plugin.llm_dtype import (
    EMULATED_BF16_SLOWDOWN,
    LLM_DTYPES,
    LlmDtypeError,
    default_llm_dtype,
    emulated_bf16_notice,
    with_llm_dtype,
)
from sae_mask_plugin.masking.config import MaskingConfig
from sae_mask_plugin.report.gates import DEFAULT_TRAINING_GATE, TrainingGate, TrainingGateError
from sae_mask_plugin.report.study_reference import available_study_references, load_study_reference
from sae_mask_plugin.training.settings import B_DEC_INITS, MATRYOSHKA_FRACTIONS, BDecInit

if TYPE_CHECKING:
    from sae_lens.saes.sae import TrainingSAEConfig

EMBEDDED_DATASET = "embedded"
"""`dataset: embedded` trains on the plugin's offline corpus (`load_embedded_corpus`, shuffled by the run seed)."""

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
"""The shipped recipes: `sae_mask_plugin/recipes` links to the top-level `recipes/` and is packaged in the wheel;
`load_recipe("cpu_demo_quick")` finds `recipes/cpu_demo_quick.yaml`."""

EXTERNAL_EVALS: tuple[str, ...] = ("scr", "tpp")
"""Evals that need hub datasets: a sweep runs them through `sweep.saebench` (a status file says when they could not
run); `eval_configs` cannot set them. The others go to `sae_mask_plugin.evals.evaluate_saes` directly."""

EvalPreset = Literal["cpu", "full"]
EVAL_OPTIONS = ("ood_tasks", "sparse_probing_datasets")

RUNNER_FIELDS_SET_BY_SWEEP = frozenset(
    {
        "saes",
        "hook_names",
        "hook_head_indices",
        "model_name",
        "model_class_name",
        "dataset_path",
        "training_tokens",
        "seed",
        "masking",
        "output_path",
        "checkpoint_path",
        "resume_from_checkpoint",
        "evaluator",
        "sae_lens_version",
        "sae_lens_training_version",
    }
)
SAE_FIELDS_SET_BY_SWEEP = frozenset({"d_in", "device", "metadata"})
MASKING_FIELDS = frozenset(f.name for f in fields(MaskingConfig))
FIXED_AXES = ("architecture", "seed")
NAMED_AXES = frozenset({"architecture", "seed", "k", "d_sae", "p", "strategy"})
"""Axes that always appear in a run name (in this order: architecture, k, width, p, strategy, ..., seed)."""


MAX_LISTED_NAMES = 12
"""Error messages list every known name when there are at most this many (e.g. architectures)."""


class RecipeError(SaeMaskUserError, ValueError):
    """A recipe that cannot be run; raised while loading it, before any model is loaded."""


def training_architectures() -> list[str]:
    """Architectures SAELens can train (its training registry, including any registered by plugins)."""
    from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY

    return sorted(SAE_TRAINING_CLASS_REGISTRY)


def training_config_class(architecture: str) -> type[TrainingSAEConfig]:
    """SAELens's training config class of `architecture`."""
    from sae_lens.registry import get_sae_training_class

    return get_sae_training_class(architecture)[1]


def sae_fields(architecture: str) -> set[str]:
    """The fields a recipe may set for `architecture` (its SAELens training config, minus those the sweep sets)."""
    return {f.name for f in fields(training_config_class(architecture))} - SAE_FIELDS_SET_BY_SWEEP


def runner_fields() -> set[str]:
    """SAELens multi-SAE runner fields a recipe may set under `runner:`."""
    from sae_mask_plugin.training.config import MaskedMultiSAETrainingRunnerConfig

    return {
        f.name for f in fields(MaskedMultiSAETrainingRunnerConfig) if not f.name.startswith("_")
    } - RUNNER_FIELDS_SET_BY_SWEEP


def check_names(where: str, names: Iterable[str], known: Iterable[str]) -> None:
    """Raise `RecipeError` naming the first of `names` not in `known`, with close matches."""
    known = sorted(known)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            if not close or len(known) <= MAX_LISTED_NAMES:
                hint += f" (known: {', '.join(known)})"
            raise RecipeError(f"{where}: unknown {name!r}{hint}")


def format_value(value: Any) -> str:
    """A value as it appears in run names: `0.3`, `32`, `256_1024`, `repo_name`."""
    if isinstance(value, float):
        value = f"{value:g}"
    elif isinstance(value, (list, tuple)):
        value = "_".join(format_value(item) for item in value)
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_") or "none"


@dataclass(frozen=True)
class Run:
    """One SAE of the grid: its SAELens training config, its masking and its seed."""

    name: str
    sae: TrainingSAEConfig
    masking: MaskingConfig
    seed: int
    masking_tag: str
    """The masking part of the name (`p0`, `p0.3-token`, ...): with the seed it names the run's group."""

    @property
    def architecture(self) -> str:
        return self.sae.architecture()

    @property
    def group_key(self) -> tuple[str, int]:
        """Runs with the same key share one masked LLM pass (same masking, same seed and data order)."""
        return json.dumps(self.masking.to_dict(), sort_keys=True), self.seed

    @property
    def identity(self) -> str:
        """Everything that makes the run what it is (names aside); equal identities are duplicate runs."""
        sae = {key: value for key, value in self.sae.to_dict().items() if key != "metadata"}
        return json.dumps([sae, self.masking.to_dict(), self.seed], sort_keys=True, default=str)


@dataclass
class SlurmSettings:
    """Resources of each SLURM array task (`--launcher submitit`); flags of `sae-mask sweep` override them.

    Args:
        partition: SLURM partition; None uses the cluster's default.
        gpus_per_node: GPUs per task (one shard runs its groups one after another on one GPU).
        cpus_per_task: CPU cores per task (tokenization, data loading).
        mem_gb: Host memory per task in GB; None uses the partition's default.
        timeout_min: Wall-clock limit per task in minutes.
        array_parallelism: Most tasks of the array running at once; None: no limit.
        account: SLURM account to charge; None: the user's default.
    """

    partition: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: float | None = None
    timeout_min: int = 240
    array_parallelism: int | None = None
    account: str | None = None

    def __post_init__(self) -> None:
        for name in ("gpus_per_node", "cpus_per_task", "timeout_min", "mem_gb", "array_parallelism"):
            value = getattr(self, name)
            minimum = 0 if name == "gpus_per_node" else 1
            if value is not None and (isinstance(value, bool) or value < minimum):
                raise RecipeError(f"slurm.{name} must be >= {minimum}, got {value!r}")

    def executor_parameters(self) -> dict[str, Any]:
        """Parameters for `submitit.AutoExecutor.update_parameters` (unset ones left to the cluster)."""
        parameters = {
            "gpus_per_node": self.gpus_per_node,
            "cpus_per_task": self.cpus_per_task,
            "timeout_min": self.timeout_min,
            "mem_gb": self.mem_gb,
            "slurm_partition": self.partition,
            "slurm_array_parallelism": self.array_parallelism,
            "slurm_account": self.account,
        }
        return {key: value for key, value in parameters.items() if value is not None}


@dataclass
class Throughput:
    """Speeds measured on one machine in one LLM dtype, from which the dry run estimates the recipe's wall time.

    Args:
        machine: Where they were measured, e.g. `2-core CPU`.
        llm_tokens_per_s: LLM forward up to the hook (batch sizes of the recipe's runner).
        sae_tokens_per_s: Training tokens per second of one SAE of the recipe's width (the SAEs of a job step
            one after another, each at this speed).
        eval_seconds_first: The recipe's evals of the first SAE (model load and cached LLM activations included).
        eval_seconds_each: The recipe's evals of every further SAE.
    """

    machine: str
    llm_tokens_per_s: float
    sae_tokens_per_s: float
    eval_seconds_first: float = 0.0
    eval_seconds_each: float = 0.0

    def __post_init__(self) -> None:
        for name in ("llm_tokens_per_s", "sae_tokens_per_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise RecipeError(f"throughput.{name} must be a positive number, got {value!r}")
        for name in ("eval_seconds_first", "eval_seconds_each"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise RecipeError(f"throughput.{name} must be a number >= 0, got {value!r}")


@dataclass
class Recipe:
    """A validated experiment: model, hook, data, runner settings and the grid of runs.

    Args:
        name: The recipe's name (default output folder `sweeps/<name>`).
        model_name: TransformerLens model name (`SmolLM2-135M-Instruct` is the offline embedded default).
        hook_name: Hook whose activations every SAE trains on.
        d_in: Width of the hook's activations.
        training_tokens: Training tokens per run (every SAE of a group sees the same tokens).
        grid: Grid blocks (a mapping or a list of mappings), each a Cartesian product of axes.
        description: One line on what the recipe reproduces.
        model_class_name: SAELens `model_class_name`.
        dataset: A Hugging Face dataset path, or `embedded` for the plugin's offline corpus.
        model_params: The LLM's parameter count, for the dry-run memory estimate (None: not counted).
        llm_dtype: `float32` or `bfloat16`, the dtype the LLM runs in for training, calibration and evals (also
            settable as `runner.model_from_pretrained_kwargs.dtype`). None: on a CPU, bfloat16 where it computes
            it natively, else float32 (`sae-mask info`); on other devices float32 (SAELens's default).
        runner: Other `MultiSAETrainingRunnerConfig` fields (devices, dtype, batch sizes, lr, logger, ...).
        sae: SAELens training-config fields for every run (each must exist for every architecture of the grid).
        sae_by_architecture: Training-config fields for the runs of one architecture.
        masking: `MaskingConfig` fields shared by every run (grid axes override them).
        matryoshka_fractions: Inner Matryoshka levels as fractions of `d_sae` (the full width is added), used
            when `matryoshka_widths` is not set.
        init_b_dec: `mean` starts each SAE's decoder bias at the mean of the first batch (short runs converge
            much faster; needs `normalize_activations: none`), `default` keeps the architecture's initialisation.
        max_saes_per_job: Most SAEs trained from one LLM pass (None: a whole group); bigger groups are split.
        evals: Evals after training: those of `sae-mask eval` and `scr` / `tpp` through SAEBench.
        eval_preset: `cpu` (small, documented CPU sizes) or `full` (SAEBench / sae-probes defaults).
        eval_options: Task lists passed to `evaluate_saes`: `ood_tasks`, `sparse_probing_datasets` (None: the
            preset's own lists).
        eval_configs: Fields of each eval's config set over the preset's, by eval name, e.g.
            `{absorption: {words_per_letter: 4}, core: {n_eval_reconstruction_batches: 1}}`.
        report: Build the comparison report (`sae-mask compare`) once every run of the grid is done.
        training_gate: `TrainingGate` fields (`report.gates`): when a baseline counts as trained, e.g.
            `{plateau_explained_variance: {topk w8192 k8: 0.85}, ev_tolerance: 0.01}` (None: the absolute gate,
            explained variance >= 0.85 and alive fraction >= 0.8).
        absorption_letter_set: `LetterSetRule` fields (e.g. `{min_baseline_seeds: 4}`): the report compares
            absorption on each cell's letter set fixed from its baselines by this rule, written down before any
            masked SAE is scored (None: no fixed-set comparison).
        study_reference: A published study shipped with the package (`report.study_reference`, e.g.
            `smollm2_study_v2`) whose 95 % intervals the report places each difference against (None: none).
        slurm: Resources of each SLURM array task.
        throughput: Speeds measured on a machine per LLM dtype (`{float32: {...}, bfloat16: {...}}`), for the
            dry run's estimate of the wall time there in the recipe's `llm_dtype` (None: no estimate).
    """

    name: str
    model_name: str
    hook_name: str
    d_in: int
    training_tokens: int
    grid: list[dict[str, Any]]
    description: str = ""
    model_class_name: str = "HookedTransformer"
    dataset: str = EMBEDDED_DATASET
    model_params: int | None = None
    llm_dtype: str | None = None
    runner: dict[str, Any] = field(default_factory=dict)
    sae: dict[str, Any] = field(default_factory=dict)
    sae_by_architecture: dict[str, dict[str, Any]] = field(default_factory=dict)
    masking: dict[str, Any] = field(default_factory=dict)
    matryoshka_fractions: list[float] = field(default_factory=lambda: list(MATRYOSHKA_FRACTIONS))
    init_b_dec: BDecInit = "mean"
    max_saes_per_job: int | None = None
    evals: list[str] = field(default_factory=list)
    eval_preset: EvalPreset = "cpu"
    eval_options: dict[str, list[str]] = field(default_factory=dict)
    eval_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: bool = False
    training_gate: TrainingGate | None = None
    absorption_letter_set: LetterSetRule | None = None
    study_reference: str | None = None
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    throughput: dict[str, Throughput] | None = None
    runs: list[Run] = field(init=False, repr=False)
    llm_dtype_reason: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(self.name)):
            raise RecipeError(
                f"recipe name {self.name!r} must be a folder-safe name (letters, digits, _ . -)"
            )
        for name in ("d_in", "training_tokens", "model_params", "max_saes_per_job"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise RecipeError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.grid, Mapping):
            self.grid = [dict(self.grid)]
        if not self.grid:
            raise RecipeError("grid must have at least one block")
        if isinstance(self.slurm, Mapping):
            self.slurm = _build(SlurmSettings, self.slurm, "slurm")
        if self.throughput is not None:
            if not isinstance(self.throughput, Mapping):
                raise RecipeError("throughput must map LLM dtypes to speeds, e.g. {float32: {machine: ...}}")
            check_names("throughput", self.throughput, LLM_DTYPES)
            self.throughput = {
                dtype: _build(Throughput, speeds, f"throughput.{dtype}")
                for dtype, speeds in self.throughput.items()
            }
        self.llm_dtype, self.llm_dtype_reason = self._resolve_llm_dtype()
        if self.init_b_dec not in B_DEC_INITS:
            raise RecipeError(f"init_b_dec must be one of {', '.join(B_DEC_INITS)}, got {self.init_b_dec!r}")
        if self.eval_preset not in get_args(EvalPreset):
            raise RecipeError(f"eval_preset must be one of {', '.join(get_args(EvalPreset))}")
        fractions = self.matryoshka_fractions
        if any(not 0 < a < b <= 1 for a, b in zip(fractions, [*fractions[1:], 1.0], strict=True)):
            raise RecipeError(f"matryoshka_fractions must increase strictly within (0, 1), got {fractions}")
        check_names("masking", self.masking, MASKING_FIELDS)
        if self.study_reference is not None and self.study_reference not in available_study_references():
            raise RecipeError(
                f"study_reference: no study named {self.study_reference!r}; shipped: "
                f"{', '.join(available_study_references())}"
            )
        check_names("eval_options", self.eval_options, EVAL_OPTIONS)
        # The checks below read SAELens's configs and registry, and SAEBench's eval configs.
        check_names("runner", self.runner, runner_fields())
        self._check_evals()
        self.grid = [self._check_block(index, block) for index, block in enumerate(self.grid)]
        architectures = {arch for block in self.grid for arch in block["architecture"]}
        check_names("sae_by_architecture", self.sae_by_architecture, architectures)
        for arch in sorted(architectures):
            check_names(f"sae (for {arch})", self.sae, sae_fields(arch))
        for arch, settings in self.sae_by_architecture.items():
            check_names(f"sae_by_architecture.{arch}", settings, sae_fields(arch))
        self.runs = self._expand()
        self._check_letter_set()
        if self.training_gate is not None and not isinstance(self.training_gate, TrainingGate):
            try:
                self.training_gate = _build(TrainingGate, self.training_gate, "training_gate")
            except TrainingGateError as error:
                raise RecipeError(f"training_gate: {error}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Build from a parsed YAML mapping; unknown keys are an error."""
        return _build(cls, data, "recipe")

    @property
    def device(self) -> str:
        """Device of the SAEs (`runner.device`)."""
        return str(self.runner.get("device", "cpu"))

    def _resolve_llm_dtype(self) -> tuple[str, str]:
        """The LLM dtype (checked against `runner.model_from_pretrained_kwargs.dtype`) and why it is that one."""
        given = self.llm_dtype or (self.runner.get("model_from_pretrained_kwargs") or {}).get("dtype")
        try:
            dtype = with_llm_dtype(self.runner.get("model_from_pretrained_kwargs"), self.llm_dtype)["dtype"]
        except LlmDtypeError as error:
            raise RecipeError(f"llm_dtype: {error}") from None
        if given is not None:
            return dtype, "set by the recipe"
        if self.llm_on_cpu:
            return dtype, default_llm_dtype().reason
        return "float32", "SAELens's default outside the CPU"

    @property
    def llm_on_cpu(self) -> bool:
        """Whether the LLM runs on the CPU (`runner.llm_device`, else `runner.device`)."""
        return str(self.runner.get("llm_device") or self.device).startswith("cpu")

    @property
    def measured_throughput(self) -> Throughput | None:
        """The recipe's speeds in its LLM dtype on this machine (None: none measured). bfloat16 on a CPU that
        emulates it: the float32 speeds with the LLM pass `EMULATED_BF16_SLOWDOWN` times slower."""
        throughput = self.throughput or {}
        float32 = throughput.get("float32")
        if self.llm_dtype == "bfloat16" and self.llm_on_cpu and not default_llm_dtype().native_bf16:
            if float32 is None:
                return None
            return replace(
                float32,
                machine=f"{float32.machine}, bfloat16 emulated (LLM pass ~1/{EMULATED_BF16_SLOWDOWN:g} of float32's)",
                llm_tokens_per_s=float32.llm_tokens_per_s / EMULATED_BF16_SLOWDOWN,
            )
        return throughput.get(self.llm_dtype)  # type: ignore[arg-type]

    def emulated_bf16_notice(self) -> str | None:
        """`llm_dtype.emulated_bf16_notice` for this recipe on this machine (None on a GPU or a bfloat16 CPU)."""
        if not self.llm_on_cpu:
            return None
        return emulated_bf16_notice(self.llm_dtype, "`--set llm_dtype=float32`")  # type: ignore[arg-type]

    def report_rules(self) -> dict[str, Any]:
        """The `build_report` keywords this recipe sets: its training gate (the default when unset), its
        absorption letter-set rule and the study its differences are placed against."""
        return {
            "training_gate": self.training_gate or DEFAULT_TRAINING_GATE,
            "letter_set_rule": self.absorption_letter_set,
            "study_reference": None
            if self.study_reference is None
            else load_study_reference(self.study_reference),
        }

    def eval_settings(self) -> dict[str, Any]:
        """The config of each eval run by `sae-mask eval`: the preset's, in the LLM dtype of training, with
        `eval_options` and `eval_configs` applied (`model_name` is set per SAE when the evals run)."""
        return {name: self._eval_config(name) for name in self.evals if name not in EXTERNAL_EVALS}

    def _eval_config(self, name: str) -> Any:
        from sae_mask_plugin.evals.runner import make_config

        config = make_config(name, self.model_name, self.eval_preset, **self.eval_options)
        dtype = {"llm_dtype": self.llm_dtype} if hasattr(config, "llm_dtype") else {}
        return replace(config, **{**dtype, **self.eval_configs.get(name, {})})

    def _check_letter_set(self) -> None:
        """Build `absorption_letter_set`, and check that the grid can fix it: the absorption eval runs and every
        (architecture, width, k) with a masked run has enough baseline seeds for the rule."""
        if self.absorption_letter_set is None:
            return
        if not isinstance(self.absorption_letter_set, LetterSetRule):
            try:
                self.absorption_letter_set = _build(
                    LetterSetRule, self.absorption_letter_set, "absorption_letter_set"
                )
            except LetterSetError as error:
                raise RecipeError(f"absorption_letter_set: {error}") from None
        if "absorption" not in self.evals:
            raise RecipeError("absorption_letter_set needs the absorption eval in evals")
        needed = self.absorption_letter_set.min_baseline_seeds
        if needed is None:
            return
        seeds: dict[tuple[str, int, int | None], set[int]] = {}
        for run in self.runs:
            if run.masking.p == 0:
                seeds.setdefault(_letter_cell(run), set()).add(run.seed)
        for run in self.runs:
            found = len(seeds.get(_letter_cell(run), set()))
            if run.masking.p > 0 and found < needed:
                architecture, d_sae, k = _letter_cell(run)
                raise RecipeError(
                    f"absorption_letter_set: min_baseline_seeds {needed}, but {architecture} w{d_sae} k{k} has "
                    f"{found} baseline seed(s) in the grid to fix its letters from"
                )

    def _check_evals(self) -> None:
        from sae_mask_plugin.embedded.probing_data import OOD_TASKS, list_probing_datasets
        from sae_mask_plugin.evals import EVAL_NAMES
        from sae_mask_plugin.evals.runner import EVAL_SPECS

        check_names("evals", self.evals, EVAL_NAMES)
        check_names("eval_configs", self.eval_configs, set(EVAL_NAMES) - set(EXTERNAL_EVALS))
        for name, settings in self.eval_configs.items():
            if not isinstance(settings, Mapping):
                raise RecipeError(f"eval_configs.{name} must be a mapping of config field -> value")
            check_names(
                f"eval_configs.{name}", settings, {f.name for f in fields(EVAL_SPECS[name].config_class)}
            )
        check_names("eval_options.ood_tasks", self.eval_options.get("ood_tasks", ()), OOD_TASKS)
        check_names(
            "eval_options.sparse_probing_datasets",
            self.eval_options.get("sparse_probing_datasets", ()),
            list_probing_datasets(),
        )
        try:
            for name in {*self.evals, *self.eval_configs} - set(EXTERNAL_EVALS):
                self._eval_config(name)
        except (TypeError, ValueError) as error:
            raise RecipeError(f"eval_configs: {error}") from error

    def _check_block(self, index: int, block: Any) -> dict[str, list[Any]]:
        where = f"grid block {index}"
        if not isinstance(block, Mapping):
            raise RecipeError(f"{where}: must be a mapping of axis -> values, got {block!r}")
        axes = {key: list(value) if isinstance(value, list) else [value] for key, value in block.items()}
        if "architecture" not in axes:
            raise RecipeError(f"{where}: needs an `architecture` axis")
        check_names(f"{where} architecture", axes["architecture"], training_architectures())
        empty = [key for key, values in axes.items() if not values]
        if empty:
            raise RecipeError(f"{where}: axis {empty[0]!r} has no values")
        shared_sae_fields = set.intersection(*(sae_fields(arch) for arch in axes["architecture"]))
        check_names(where, axes, {*FIXED_AXES, *MASKING_FIELDS, *shared_sae_fields})
        return axes

    def _expand(self) -> list[Run]:
        runs: dict[str, tuple[int, Run]] = {}
        names: dict[str, Run] = {}
        for index, block in enumerate(self.grid):
            for values in itertools.product(*block.values()):
                run = self._make_run(index, dict(zip(block, values, strict=True)))
                if run.identity in runs:
                    first = runs[run.identity][0]
                    raise RecipeError(
                        f"duplicate run {run.name!r}: produced by grid block {first} and grid block {index} "
                        "(with p = 0 every masking setting is dropped: put baselines in one block)"
                    )
                if run.name in names:
                    raise RecipeError(f"two different runs get the same name {run.name!r}: rename a value")
                runs[run.identity] = (index, run)
                names[run.name] = run
        return [run for _, run in runs.values()]

    def _make_run(self, index: int, point: dict[str, Any]) -> Run:
        where = f"grid block {index} ({', '.join(f'{k}={v}' for k, v in point.items())})"
        arch = point["architecture"]
        seed = point.get("seed", 0)
        masking_axes = {key: value for key, value in point.items() if key in MASKING_FIELDS}
        sae_axes = {key: value for key, value in point.items() if key not in {*FIXED_AXES, *MASKING_FIELDS}}
        try:
            masking = MaskingConfig(**{**self.masking, **masking_axes})
            if not masking.is_active:
                masking = MaskingConfig(p=0.0)
            settings = {**self.sae, **self.sae_by_architecture.get(arch, {}), **sae_axes}
            if arch == "matryoshka_batchtopk" and "matryoshka_widths" not in settings and "d_sae" in settings:
                settings["matryoshka_widths"] = [
                    int(f * settings["d_sae"]) for f in self.matryoshka_fractions
                ]
                settings["matryoshka_widths"].append(settings["d_sae"])
            sae = training_config_class(arch)(d_in=self.d_in, device=self.device, **settings)
        except (TypeError, ValueError) as error:
            raise RecipeError(f"{where}: {error}") from error
        masking_tag = f"p{format_value(masking.p)}"
        if masking.is_active:
            masking_tag += f"-{masking.strategy}" + "".join(
                f"-{key}_{format_value(value)}"
                for key, value in masking_axes.items()
                if key not in NAMED_AXES
            )
        parts = [arch]
        if "k" in settings:
            parts.append(f"k{format_value(settings['k'])}")
        parts += [f"w{sae.d_sae}", masking_tag]
        parts += [f"{key}_{format_value(value)}" for key, value in sae_axes.items() if key not in NAMED_AXES]
        parts.append(f"s{seed}")
        return Run("-".join(parts), sae, masking, seed, masking_tag)


def _letter_cell(run: Run) -> tuple[str, int, int | None]:
    """The (architecture, width, k) whose baselines fix a run's absorption letter set."""
    return run.architecture, run.sae.d_sae, getattr(run.sae, "k", None)


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """`cls(**data)` with unknown keys and missing required keys reported as `RecipeError`."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where} must be a mapping, got {type(data).__name__}")
    init_fields = [f for f in fields(cls) if f.init]
    check_names(where, data, {f.name for f in init_fields})
    missing = [
        f.name
        for f in init_fields
        if f.name not in data and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise RecipeError(f"{where}: missing required field(s) {', '.join(missing)}")
    return cls(**data)


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys (`runner.device`, `training_tokens`) in a parsed recipe; returns a new mapping."""
    result = json.loads(json.dumps(data))
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = result
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise RecipeError(f"override {dotted!r}: {key!r} is not a mapping")
            node = child
        node[leaf] = value
    return result


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: an existing path, or the name of a recipe in `recipes/` (with or without `.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    available = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
    raise RecipeError(f"no recipe file {str(name_or_path)!r}; shipped recipes: {available or 'none'}")


def load_recipe(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Read, override (dotted keys) and validate a recipe; every error is a `RecipeError`."""
    path = find_recipe(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping")
    return Recipe.from_dict(apply_overrides(data, overrides or {}))
