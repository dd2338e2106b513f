"""Atomic writes: whole files or nothing, published with the permissions of a plain write."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from sae_mask_plugin.files import atomic_file, publish, write_json_atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_written_file_is_whole_and_readable_like_a_plain_write(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "result.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [path.name for path in target.parent.iterdir()] == ["result.json"]


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target, suffix=".md") as staging:
        assert staging.suffix == ".md"
        staging.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["report.md"]


def test_published_folder_gets_normal_permissions(tmp_path: Path) -> None:
    staging = Path(tempfile.mkdtemp(dir=tmp_path))  # created 0700
    (staging / "weights").write_text("w")
    publish(staging, tmp_path / "cache")
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o777 & ~_umask()
    assert (tmp_path / "cache" / "weights").read_text() == "w"
