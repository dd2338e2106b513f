"""What the report knows about one trained SAE: its training settings (from the saved folder) and its metrics.

Baseline vs masked is read from the SAE's masking metadata (no masking record = baseline, p = 0), so SAEs trained
with plain SAELens, `sae-mask train`, the Python API or a sweep all fit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sae_mask_plugin.calibration.settings import CALIBRATION_METADATA_KEY
from sae_mask_plugin.evals.absorption.letter_set import (
    FIXED_DROPPED,
    FIXED_FRACTION_SCORE,
    FIXED_K1_SCORE,
    FIXED_LETTER_METRICS,
    FIXED_PASSING,
)
from sae_mask_plugin.files import RUNNER_CFG_FILENAME, SAE_CFG_FILENAME
from sae_mask_plugin.llm_dtype import CPU_MODEL_METADATA_KEY, LLM_DTYPE_METADATA_KEY
from sae_mask_plugin.sae_metadata import (
    read_masking_record,
    saved_training_architecture,
    saved_training_k,
)


@dataclass(frozen=True)
class MetricSpec:
    """A reported metric: its key in the eval results, its label, and which direction is better (None: neither)."""

    key: str
    label: str
    higher_is_better: bool | None


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("l0", "L0", None),
    MetricSpec("explained_variance", "explained variance", True),
    MetricSpec("frac_alive", "alive fraction", True),
    MetricSpec("mse", "MSE", False),
    MetricSpec("ce_loss_score", "CE loss recovered", True),
    MetricSpec(
        "gated_k1_full_absorption_score", "absorption: k = 1 full-absorption rate (gated letters)", False
    ),
    MetricSpec(
        "gated_absorption_fraction_score",
        "absorption fraction (SAEBench, gated letters; not validated on ground truth)",
        False,
    ),
    MetricSpec("gated_full_absorption_score", "full-absorption rate (SAEBench, gated letters)", False),
    MetricSpec("absorption_letters_passing", "absorption: letters passing the gate", None),
    MetricSpec(FIXED_K1_SCORE, "absorption: k = 1 full-absorption rate (fixed letter set)", False),
    MetricSpec(
        FIXED_FRACTION_SCORE,
        "absorption fraction (SAEBench, fixed letter set; not validated on ground truth)",
        False,
    ),
    MetricSpec(FIXED_PASSING, "absorption: letters of the fixed set passing the gate", True),
    MetricSpec(FIXED_DROPPED, "dropped-word rate, k = 1 (fixed letter set; not validated, reference)", None),
    MetricSpec(
        "gated_k1_dropped_score", "dropped-word rate, k = 1 (gated letters; not validated, reference)", None
    ),
    MetricSpec(
        "random_sae_k1_full_absorption_score", "k = 1 full-absorption rate of a random SAE (reference)", None
    ),
    MetricSpec("random_sae_absorption_fraction_score", "absorption of a random SAE (reference)", None),
    MetricSpec("mean_absorption_fraction_score", "mean absorption (SAEBench, ungated)", False),
    MetricSpec("mean_full_absorption_score", "full-absorption rate (SAEBench, ungated)", False),
    MetricSpec("num_letters_with_probe_feature", "absorption: letters with a probe", None),
    MetricSpec("sae_top_1_test_accuracy", "sparse probing top-1 acc", True),
    MetricSpec("sae_top_2_test_accuracy", "sparse probing top-2 acc", True),
    MetricSpec("sae_top_5_test_accuracy", "sparse probing top-5 acc", True),
    MetricSpec("sae_top_16_test_accuracy", "sparse probing top-16 acc", True),
    MetricSpec("llm_test_accuracy", "dense probe acc (reference)", None),
    MetricSpec("oracle_id_accuracy", "OOD eval: oracle ID acc (reference)", None),
    MetricSpec("oracle_ood_accuracy", "OOD eval: oracle OOD acc (reference)", None),
    MetricSpec("sae_id_accuracy", "OOD eval: SAE ID acc", True),
    MetricSpec("sae_ood_accuracy", "OOD eval: SAE OOD acc", True),
    MetricSpec("sae_ood_gap", "OOD gap (ID − OOD)", False),
    MetricSpec("oracle_minus_sae_ood_accuracy", "oracle − SAE OOD acc", False),
    MetricSpec("scr_metric_threshold_20", "SCR (top-20 latents)", True),
    MetricSpec("tpp_threshold_20_total_metric", "TPP (top-20 latents)", True),
)
METRICS_BY_KEY = {spec.key: spec for spec in METRICS}
KEY_METRICS: tuple[str, ...] = (
    "gated_k1_full_absorption_score",
    "gated_absorption_fraction_score",
    "sae_top_1_test_accuracy",
    "sae_top_5_test_accuracy",
    "sae_ood_accuracy",
    "sae_ood_gap",
    "explained_variance",
    "frac_alive",
    "ce_loss_score",
)
"""The metrics of the report's headline and its metrics-vs-L0 plot. Absorption: the gated k = 1 full-absorption
rate (the score the synthetic control in `docs/absorption_control/` found to rank-track true absorption), then
SAEBench's gated absorption fraction (not validated on ground truth); both are absent where absorption is not
measurable, and SAEBench's other scores stay in the full tables."""
DUPLICATE_METRICS: dict[str, str] = {
    "mse": "explained_variance",
    "oracle_minus_sae_ood_accuracy": "sae_ood_accuracy",
}
"""Metrics that restate another's finding (MSE is explained variance on another scale; the oracle's OOD accuracy
is the same for both arms, so oracle − SAE moves exactly as SAE OOD accuracy): shown, and outside the FDR family,
so each finding is counted once."""
SAME_K_ONLY_METRICS = frozenset(FIXED_LETTER_METRICS)
"""Metrics compared at the same k only: the fixed letter set is per k, and a matched-L0 baseline curve crosses k."""
REFERENCE_METRICS = frozenset(spec.key for spec in METRICS if spec.higher_is_better is None)
"""Metrics that describe the setting rather than the SAE's quality (L0, letters, dense probes): shown, not tested."""


def better_label(spec: MetricSpec) -> str:
    """The metric's label with the direction that is better, e.g. `mean absorption (lower better)`."""
    direction = {True: " (higher better)", False: " (lower better)", None: ""}[spec.higher_is_better]
    return spec.label + direction


@dataclass(frozen=True)
class RunRecord:
    """One trained SAE with its settings and metrics; `mask_p` is 0 for a baseline."""

    name: str
    sae_path: str
    model_name: str
    hook_name: str
    architecture: str
    d_sae: int
    k: int | None
    seed: int | None
    training_tokens: int | None
    mask_p: float
    mask_strategy: str | None
    mask_token: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    """The SAE's `threshold_calibration` metadata (None: threshold as learned in training)."""
    ood_tasks: dict[str, Any] | None = None
    """The OOD eval's `headline_tasks` and `excluded_tasks` (None when it did not run)."""
    loss_positions: str = "all"
    """The positions a masked SAE trained on (`all`, `unmasked` or `masked`; `all` for a baseline)."""
    llm_dtype: str | None = None
    """The dtype of the LLM activations the SAE trained on, from its metadata (None: not recorded)."""
    cpu_model: str | None = None
    """The CPU model that computed the LLM activations the SAE trained on (None: not recorded)."""
    absorption_letters: dict[str, dict[str, Any]] | None = None
    """Per letter, the absorption eval's `LetterScore` fields (None: no absorption eval with its gate)."""

    @property
    def is_calibrated(self) -> bool:
        return bool(self.calibration) and "calibrated_threshold" in (self.calibration or {})

    @property
    def is_baseline(self) -> bool:
        return self.mask_p == 0

    @property
    def curve_key(self) -> tuple[Any, ...]:
        """Everything but the masking and k: the runs of one seed whose L0 curve a masked run is matched on."""
        return (
            self.model_name,
            self.hook_name,
            self.architecture,
            self.d_sae,
            self.training_tokens,
            self.seed,
        )

    @property
    def pairing_key(self) -> tuple[Any, ...]:
        """Everything but the masking: runs with equal keys saw the same data in the same order."""
        return (*self.curve_key, self.k)

    @property
    def shape(self) -> str:
        """Architecture, width and k, e.g. `matryoshka_batchtopk w2048 k32`."""
        return f"{self.architecture} w{self.d_sae}" + (f" k{self.k}" if self.k else "")

    @property
    def condition(self) -> str:
        """The masking condition, e.g. `baseline`, `p=0.3 token` or `p=0.3 token unmasked-loss`."""
        if self.is_baseline:
            return "baseline"
        loss = "" if self.loss_positions == "all" else f" {self.loss_positions}-loss"
        return f"p={self.mask_p:g} {self.mask_strategy}{loss}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_sae_record(
    sae_dir: str | Path, metrics: dict[str, float] | None = None, ood_tasks: dict[str, Any] | None = None
) -> RunRecord:
    """Build a `RunRecord` from a saved SAE folder (`cfg.json`, and `runner_cfg.json` when SAELens wrote one)."""
    sae_dir = Path(sae_dir)
    cfg = json.loads((sae_dir / SAE_CFG_FILENAME).read_text())
    runner_path = sae_dir / RUNNER_CFG_FILENAME
    runner = json.loads(runner_path.read_text()) if runner_path.is_file() else {}
    metadata = cfg.get("metadata") or {}
    masking = read_masking_record(sae_dir) or {}
    mask_p = float(masking.get("p", 0.0))
    return RunRecord(
        name=sae_dir.name,
        sae_path=str(sae_dir),
        model_name=str(metadata.get("model_name") or runner.get("model_name") or "unknown"),
        hook_name=str(metadata.get("hook_name") or runner.get("hook_name") or "unknown"),
        # SAELens saves (Batch)TopK-family SAEs as JumpReLU for inference; the metadata keeps what was trained.
        architecture=saved_training_architecture(cfg),
        d_sae=int(cfg["d_sae"]),
        k=saved_training_k(cfg),
        seed=runner.get("seed"),
        training_tokens=runner.get("training_tokens"),
        mask_p=mask_p,
        mask_strategy=masking.get("strategy") if mask_p > 0 else None,
        mask_token=masking.get("mask_token_string") if mask_p > 0 else None,
        metrics=dict(metrics or {}),
        calibration=metadata.get(CALIBRATION_METADATA_KEY),
        ood_tasks=ood_tasks,
        loss_positions=str(masking.get("loss_positions", "all")) if mask_p > 0 else "all",
        llm_dtype=metadata.get(LLM_DTYPE_METADATA_KEY),
        cpu_model=metadata.get(CPU_MODEL_METADATA_KEY),
    )
