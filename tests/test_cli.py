"""The `sae-mask` dispatcher and `sae-mask info`."""

from __future__ import annotations

import importlib

import pytest

from sae_mask_plugin import cli


def test_every_subcommand_module_exposes_main():
    for name, (module, _) in cli.SUBCOMMANDS.items():
        assert callable(importlib.import_module(module).main), name


def test_usage_and_unknown_command(capsys):
    assert cli.main([]) == 0
    assert "sae-mask <command>" in capsys.readouterr().out
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_info_reports_versions_and_cache(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_MASK_CACHE", str(tmp_path))
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "sae-lens" in out and "SmolLM2-135M-Instruct" in out
    assert str(tmp_path) in out
    assert "model_cache_built  False" in out


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMANDS))
def test_every_subcommand_documents_itself(command, capsys):
    try:
        status = cli.main([command, "--help"])
    except SystemExit as exit_info:  # argparse's own --help exit
        status = exit_info.code
    assert status == 0
    assert "usage" in capsys.readouterr().out.lower()
