"""The names of `sae-mask train` that both its light front (`training.cli`) and SAELens's parser behind it
(`training.flags`) use: its program name and description, and the snapshot of its flags with the versions it was
taken with. Nothing here imports SAELens."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

PROG = "sae-mask train"
DESCRIPTION = (
    "Train an SAE with SAELens, masked or not. Every SAELens training flag is accepted; --p 0 trains the baseline. "
    "Defaults: the embedded model and corpus, settings for a short CPU run."
)
FLAGS_FILE = Path(__file__).with_name("flags.json")
SNAPSHOT_PACKAGES = ("sae-lens", "simple-parsing")


def installed_versions() -> dict[str, str]:
    """The installed versions of the packages the snapshot of the flags depends on."""
    return {name: version(name) for name in SNAPSHOT_PACKAGES}
