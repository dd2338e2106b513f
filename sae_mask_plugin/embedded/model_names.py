"""TransformerLens's model names, as a packaged snapshot (`model_names.json`), so that a model name TransformerLens
does not know fails at once: importing TransformerLens to ask it takes seconds (it imports torch).

A test takes the snapshot again from the installed TransformerLens and compares; with another TransformerLens
version than the snapshot's, the names are read from TransformerLens itself. After an upgrade, regenerate it with

    python -m sae_mask_plugin.embedded.model_names
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

MODEL_NAMES_FILE = Path(__file__).with_name("model_names.json")
SNAPSHOT_PACKAGE = "transformer-lens"


def describe_model_names() -> dict[str, Any]:
    """The snapshot, from the installed TransformerLens: its version, official model names and their aliases.

    Local folders registered at run time (the embedded default's, once used: `embedded.model` registers its absolute
    path) are not TransformerLens's own names and are left out.
    """
    from transformer_lens import supported_models

    official = [name for name in supported_models.OFFICIAL_MODEL_NAMES if not Path(name).is_absolute()]
    aliases = {
        name: list(supported_models.MODEL_ALIASES[name])
        for name in official
        if name in supported_models.MODEL_ALIASES
    }
    return {
        "versions": {SNAPSHOT_PACKAGE: version(SNAPSHOT_PACKAGE)},
        "official": official,
        "aliases": aliases,
    }


def load_model_names() -> dict[str, Any]:
    """The snapshot when it was taken with the installed TransformerLens, else the names TransformerLens gives."""
    names = json.loads(MODEL_NAMES_FILE.read_text())
    if names["versions"] == {SNAPSHOT_PACKAGE: version(SNAPSHOT_PACKAGE)}:
        return names
    return describe_model_names()


def write_model_names(path: Path = MODEL_NAMES_FILE) -> None:
    """Take the snapshot from the installed TransformerLens and write it to `path` (the packaged file)."""
    path.write_text(json.dumps(describe_model_names(), indent=1) + "\n")


if __name__ == "__main__":
    write_model_names()
    print(f"wrote {MODEL_NAMES_FILE}")
