"""Every ```python block of README.md runs, in order, in one working folder, so the README cannot drift from the code.

Blocks that name hub models or paper-sized budgets run on the embedded default with a tiny budget through
`SUBSTITUTIONS` (each must change at least one block, so a README edit that drops one fails here too); those
blocks also see `LoggingConfig` and `load_embedded_corpus`, which the substitutions use. Every other block, the
offline drop-in example included, runs exactly as written. The embedded model is registered with TransformerLens
first, as any use of `sae_mask_plugin` does, so the plain SAELens block can load it by name.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sae_mask_plugin import cli

README = Path(__file__).resolve().parents[1] / "README.md"

TINY_EMBEDDED_RUN = (
    'dataset_path="",\n'
    "    is_dataset_tokenized=False,\n"
    "    context_size=64,\n"
    "    store_batch_size_prompts=4,\n"
    "    n_batches_in_buffer=8,\n"
    "    train_batch_size_tokens=512,\n"
    "    exclude_special_tokens=True,\n"
    "    logger=LoggingConfig(log_to_wandb=False),\n"
    '    output_path="hub_example",'
)

SUBSTITUTIONS: list[tuple[str, str]] = [
    # hub model, width and hook -> the embedded SmolLM2 (d_model 576), a small SAE
    ("d_in=768, d_sae=16384", "d_in=576, d_sae=256"),
    ('model_name="pythia-160m-deduped"', 'model_name="SmolLM2-135M-Instruct"'),
    # hub dataset -> the embedded corpus (override_dataset), W&B off, a buffer that holds a batch
    ('dataset_path="monology/pile-uncopyrighted",', TINY_EMBEDDED_RUN),
    ("TrainingRunner(cfg).run()", "TrainingRunner(cfg, override_dataset=load_embedded_corpus(seed=0)).run()"),
    # 100 M tokens -> two training batches
    ("training_tokens=100_000_000", "training_tokens=1024"),
    # all four evals (~6 min on 2 cores) -> the core eval of the two SAEs the drop-in example trained
    ('["core", "absorption", "sparse_probing", "ood"]', '["core"]'),
]
"""(README text, what the test runs instead)."""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def substituted(block: str) -> tuple[str, set[int]]:
    """The block with every applicable substitution made, and the indices of those that applied."""
    applied = set()
    for index, (old, new) in enumerate(SUBSTITUTIONS):
        if old in block:
            block = block.replace(old, new)
            applied.add(index)
    return block, applied


def test_every_substitution_still_matches_the_readme():
    blocks = python_blocks(README.read_text())
    applied = set().union(*(substituted(block)[1] for block in blocks))
    assert applied == set(range(len(SUBSTITUTIONS))), [
        SUBSTITUTIONS[i][0] for i in set(range(len(SUBSTITUTIONS))) - applied
    ]
    assert any(
        not substituted(block)[1] and "MaskedLanguageModelSAETrainingRunner" in block for block in blocks
    )


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 5
    from sae_lens import LoggingConfig

    from sae_mask_plugin.embedded.corpus import load_embedded_corpus
    from sae_mask_plugin.embedded.model import register_with_transformer_lens

    register_with_transformer_lens()
    for number, block in enumerate(blocks, start=1):
        code, applied = substituted(block)
        namespace = {"__name__": f"readme_block_{number}"}
        if applied:
            namespace |= {"LoggingConfig": LoggingConfig, "load_embedded_corpus": load_embedded_corpus}
        exec(compile(code, f"README.md python block {number}", "exec"), namespace)
    for name in ("baseline", "masked"):
        assert (tmp_path / "out" / name / "sae_weights.safetensors").is_file()
    assert sorted(path.name for path in (tmp_path / "evals" / "core").glob("*.json")) == [
        "baseline_custom_sae_eval_results.json",
        "masked_custom_sae_eval_results.json",
    ]


def test_every_command_the_readme_names_exists():
    named = set(re.findall(r"`?sae-mask ([a-z][a-z-]*)", README.read_text()))
    assert named and named <= set(cli.SUBCOMMANDS), named - set(cli.SUBCOMMANDS)


def test_the_readme_dry_run_runs_as_written(capsys):
    bash = "".join(re.findall(r"^```bash\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL))
    (line,) = [line for line in bash.splitlines() if line.startswith("sae-mask") and "--dry-run" in line]
    argv = shlex.split(line, comments=True)
    assert cli.main(argv[1:]) == 0
    assert "paper_pythia160m" in capsys.readouterr().out
