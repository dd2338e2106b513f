"""How the report's text renders: mask tokens as code, the absorption-gate table narrow enough for a page."""

from __future__ import annotations

from report_checks import run_record

from sae_mask_plugin.report.build import build_report
from sae_mask_plugin.report.gates import absorption_gate_lines, absorption_gate_rows


def test_mask_tokens_print_as_code_so_markdown_does_not_take_them_for_html(tmp_path):
    records = [run_record(0.0, 0, l0=16.0), run_record(0.3, 0, l0=15.0)]
    report = build_report(records, tmp_path).report.read_text()
    assert "- **mask tokens**: `<repo_name>`" in report
    assert "**: <repo_name>" not in report


def test_the_absorption_gate_table_has_short_headers_explained_above_it():
    record = run_record(
        0.0,
        0,
        absorption_letters_passing=12,
        absorption_letters_needed=20,
        gated_k1_full_absorption_score=0.3,
        mean_main_latent_precision=0.6,
    )
    lines = absorption_gate_lines(absorption_gate_rows([record]))
    header = next(line for line in lines if line.startswith("| run |"))
    assert len(header) <= 100
    assert "| run-p0.0-k16-s0 | 12 / 20 | absorption not measurable here |" in "\n".join(lines)
