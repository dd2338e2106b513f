"""A sweep's results archive: one small JSON file per finished group (its runs' settings and eval metrics, the
`RunRecord`s a report is built from), so that a grid can be finished across machines or runs that keep only
small files (e.g. committed to a repository) and not the SAE weights, activation caches or checkpoints.

Layout: `<archive>/<group name>.json` = `{"recipe": name, "group": name, "runs": [RunRecord fields, ...]}`,
written atomically once the group's SAEs are trained and every eval of the recipe has a result. A run whose
record is archived counts as done: the sweep does not train or evaluate its group again, and the report joins
the archived records with those of the SAE folders present. Runs added to a group after it was archived are
trained, evaluated and archived beside the group's earlier records.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.report.records import RunRecord


class ArchiveError(SaeMaskUserError, ValueError):
    """An archive file that belongs to another recipe or does not hold run records."""


def archive_path(archive_dir: str | Path, group_name: str) -> Path:
    """The archive file of a group."""
    return Path(archive_dir) / f"{group_name}.json"


def write_group_archive(
    archive_dir: str | Path, recipe_name: str, group_name: str, records: list[RunRecord]
) -> Path:
    """Archive a finished group's run records beside those of its runs archived before (a grid extended with
    runs of a group already archived: a new k, say); returns the file written."""
    path = archive_path(archive_dir, group_name)
    runs = (
        {record.name: asdict(record) for record in read_archive_file(path, recipe_name)}
        if path.is_file()
        else {}
    )
    runs |= {record.name: asdict(record) for record in records}
    write_json_atomic(path, {"recipe": recipe_name, "group": group_name, "runs": list(runs.values())})
    return path


def read_archive_file(path: Path, recipe_name: str) -> list[RunRecord]:
    """The run records of one archive file of `recipe_name`."""
    try:
        content = json.loads(path.read_text())
        if content["recipe"] != recipe_name:
            raise ArchiveError(
                f"{path} archives recipe {content['recipe']!r}, not {recipe_name!r}: "
                "give each recipe an archive folder of its own"
            )
        return [RunRecord(**run) for run in content["runs"]]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ArchiveError(f"{path} is not a sweep archive file ({error})") from None


def read_archive(archive_dir: str | Path | None, recipe_name: str) -> dict[str, RunRecord]:
    """`{run name: record}` of every archived run of `recipe_name` (empty when there is no archive yet)."""
    if archive_dir is None or not Path(archive_dir).exists():
        return {}
    if not Path(archive_dir).is_dir():
        raise ArchiveError(f"archive {archive_dir} is a file, not a folder")
    return {
        record.name: record
        for path in sorted(Path(archive_dir).glob("*.json"))
        for record in read_archive_file(path, recipe_name)
    }
