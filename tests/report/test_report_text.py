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


def test_the_report_opens_with_three_sentences_read_off_its_numbers(tmp_path):
    records = []
    for seed in range(3):
        for k, l0 in ((16, 16.0), (32, 32.0)):
            records.append(run_record(0.0, seed, k, l0=l0, explained_variance=0.9, frac_alive=0.95))
        records.append(
            run_record(0.3, seed, 32, l0=24.0, explained_variance=0.85 - 0.001 * seed, frac_alive=0.95)
        )
    report = build_report(records, tmp_path).report.read_text()
    opening = report.split("\n\n")[1].splitlines()  # one paragraph, a sentence a line
    assert opening[0].startswith("This report compares 3 masked SAEs (p=0.3 token) with 6 baselines")
    assert opening[0].endswith("over 3 seeds.")
    assert opening[1] == "6 of 6 baselines pass the training gate."
    assert opening[2].startswith(
        "At matched L0, the masked SAEs' differences that hold after FDR: explained variance"
    )
    one_seed = build_report(records[:3], tmp_path / "one").report.read_text()
    assert "With one seed no difference has an interval" in one_seed
