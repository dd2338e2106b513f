"""Atomic writes shared by the training runners, the evals, the report and the caches, and the names of a saved
SAE's files.

Readers never see half a file, a failure leaves nothing behind, and what is published gets the permissions a plain
`open`/`mkdir` would give under the user's umask (temporary files and folders are created private, 0600/0700).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SAE_CFG_FILENAME = "cfg.json"
SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"
RUNNER_CFG_FILENAME = "runner_cfg.json"
"""SAELens's names of a saved SAE's files (`sae_lens.constants`), here so that reading and checking SAE folders
imports no SAELens (a test checks they agree)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(staging: str | Path, path: str | Path) -> None:
    """Give the file or folder `staging` the permissions of a normal write and rename it to `path` (atomic on one
    file system; an existing file is replaced, an existing folder must be removed first)."""
    staging = Path(staging)
    os.chmod(staging, (0o777 if staging.is_dir() else 0o666) & ~_umask())
    os.replace(staging, path)


@contextmanager
def atomic_file(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it becomes `path` on success and is removed on failure.

    `suffix` keeps an extension for writers that infer the format from it (e.g. matplotlib's `savefig`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        publish(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_file(path) as temporary:
        temporary.write_text(text)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """`write_text_atomic` of `data` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


@contextmanager
def staged_directory(path: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside `path`; on success move its files into `path`, on failure delete it.

    Files are moved one by one with `os.replace` (atomic on one file system) and existing files of `path` that
    are not replaced are kept, as SAELens's own saving keeps them.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        target.mkdir(exist_ok=True)
        for source in sorted(staging.rglob("*")):
            destination = target / source.relative_to(staging)
            if source.is_dir():
                destination.mkdir(exist_ok=True)
            else:
                os.replace(source, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def build_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock, across processes, on building `path` (a lock file beside it). A builder checks
    whether `path` is built again once it holds the lock: two array tasks on one node then build it once."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{path.name}.lock")):
        yield
