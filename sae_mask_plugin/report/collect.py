"""Gather `RunRecord`s from run folders: saved SAE folders and the eval results `sae-mask eval` wrote for them.

A run folder may hold SAE folders (any depth; a folder with SAELens's `cfg.json` and weights) and eval outputs
(`evaluation_summary.json` beside SAEBench-layout result files `<eval>/<sae name>_custom_sae_eval_results.json`).
Summaries are matched to SAE folders by path, or by folder name when a run folder was moved or gathered from
several machines. Metrics are the flattened `eval_result_metrics` of every eval result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.evals.absorption.letter_set import letter_scores_from_eval
from sae_mask_plugin.evals.common import SUMMARY_FILENAME
from sae_mask_plugin.files import SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME
from sae_mask_plugin.report.records import RunRecord, read_sae_record


class RunFolderError(SaeMaskUserError, ValueError):
    """A run folder that does not exist or holds no SAE."""


def find_sae_folders(root: Path) -> list[Path]:
    """SAE folders under `root` (itself included), sorted; checkpoints are skipped."""
    candidates = [root] if (root / SAE_CFG_FILENAME).is_file() else []
    candidates += [path.parent for path in root.rglob(SAE_CFG_FILENAME)]
    return sorted(
        {
            folder
            for folder in candidates
            if (folder / SAE_WEIGHTS_FILENAME).is_file() and "checkpoints" not in folder.parts
        }
    )


def flatten_metrics(result: dict[str, Any]) -> dict[str, float]:
    """`{metric: value}` from a SAEBench result's `eval_result_metrics` (`{category: {metric: value}}`), plus
    sparse probing's `sae_metrics_by_k` (`{k: {test_accuracy: value}}` -> `sae_top_{k}_test_accuracy`), which
    holds the k that SAEBench's fixed fields lack (e.g. 16)."""
    flat: dict[str, float] = {}
    for category in (result.get("eval_result_metrics") or {}).values():
        for metric, value in (category or {}).items():
            if _is_number(value):
                flat[metric] = float(value)
    for k, scores in (result.get("sae_metrics_by_k") or {}).items():
        for metric, value in scores.items():
            if _is_number(value):
                flat.setdefault(f"sae_top_{k}_{metric}", float(value))
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _result_file(summary_path: Path, eval_name: str, record: dict[str, Any]) -> Path:
    recorded = Path(record.get("result_path", ""))
    return recorded if recorded.is_file() else summary_path.parent / eval_name / recorded.name


def ood_task_selection(result: dict[str, Any]) -> dict[str, Any] | None:
    """The OOD eval's `headline_tasks` and `excluded_tasks` (task → reason), when the result records them."""
    if "headline_tasks" not in result:
        return None
    return {"headline_tasks": result["headline_tasks"], "excluded_tasks": result.get("excluded_tasks") or {}}


@dataclass
class _FolderResults:
    """What the eval results under the run folders say of each SAE folder."""

    metrics: dict[Path, dict[str, float]] = field(default_factory=dict)
    ood_tasks: dict[Path, dict[str, Any]] = field(default_factory=dict)
    absorption_letters: dict[Path, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _results_by_sae_folder(roots: list[Path], sae_folders: list[Path]) -> _FolderResults:
    """Flattened metrics, OOD task selections and per-letter absorption scores of every SAE folder, from the eval
    summaries under `roots`."""
    by_name = {folder.name: folder for folder in sae_folders}
    found = _FolderResults()
    for root in roots:
        for summary_path in sorted(root.rglob(SUMMARY_FILENAME)):
            for sae_name, entry in json.loads(summary_path.read_text()).items():
                recorded = Path(entry.get("path", ""))
                folder = recorded if recorded in sae_folders else by_name.get(recorded.name or sae_name)
                if folder is None:
                    continue
                for eval_name, record in entry.get("evals", {}).items():
                    result = _result_file(summary_path, eval_name, record)
                    if record.get("status") in {"done", "skipped"} and result.is_file():
                        content = json.loads(result.read_text())
                        found.metrics.setdefault(folder, {}).update(flatten_metrics(content))
                        selection = ood_task_selection(content)
                        if selection is not None:
                            found.ood_tasks[folder] = selection
                        letters = letter_scores_from_eval(content)
                        if letters is not None:
                            found.absorption_letters[folder] = {
                                letter: asdict(score) for letter, score in letters.items()
                            }
    return found


def collect_runs(run_dirs: list[str | Path]) -> list[RunRecord]:
    """`RunRecord`s (settings + eval metrics) of every SAE under `run_dirs`."""
    roots = [Path(path) for path in run_dirs]
    missing = [str(path) for path in roots if not path.is_dir()]
    if missing:
        raise RunFolderError(f"not a folder: {', '.join(missing)}")
    sae_folders = sorted({folder.resolve() for root in roots for folder in find_sae_folders(root)})
    if not sae_folders:
        raise RunFolderError(
            f"no saved SAE (a folder with {SAE_CFG_FILENAME}) under {', '.join(map(str, roots))}"
        )
    found = _results_by_sae_folder([root.resolve() for root in roots], sae_folders)
    records = [
        replace(
            read_sae_record(folder, found.metrics.get(folder), found.ood_tasks.get(folder)),
            absorption_letters=found.absorption_letters.get(folder),
        )
        for folder in sae_folders
    ]
    names = [record.name for record in records]
    # Folders of the same name (e.g. `plain/sae` and `masked/sae`) are told apart by their parent folder.
    return [
        replace(record, name=f"{Path(record.sae_path).parent.name}/{record.name}")
        if names.count(record.name) > 1
        else record
        for record in records
    ]
