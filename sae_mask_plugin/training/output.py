"""Writing outputs so that a failure never leaves a half-written file in the output folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
