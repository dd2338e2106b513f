"""SAEBench's SCR and TPP evals (`sae_bench/evals/scr_and_tpp`), which the paper also reports.

They read their probing datasets (bias-in-bios, Amazon reviews) from the Hugging Face hub, so they run only where
the hub can be reached; elsewhere `evals/scr_tpp_status.json` says that they were not run and why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sae_lens import SAE

from sae_mask_plugin.embedded.model import hub_reachable

STATUS_FILENAME = "scr_tpp_status.json"
UNREACHABLE = (
    "not run: SCR and TPP load their datasets (LabHC/bias_in_bios_class_set1, "
    "canrager/amazon_reviews_mcauley_1and5) from the Hugging Face hub, which this machine cannot reach"
)


def run_scr_and_tpp(
    sae_paths: Sequence[str | Path], evals: Sequence[str], model_name: str, out_dir: str | Path, device: str
) -> dict[str, str]:
    """Run `scr` and/or `tpp` through SAEBench on saved SAEs; returns (and records) each eval's status."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not hub_reachable():
        status = dict.fromkeys(evals, UNREACHABLE)
        print(f"SCR/TPP {UNREACHABLE}")
    else:
        from sae_bench.evals.scr_and_tpp.eval_config import ScrAndTppEvalConfig
        from sae_bench.evals.scr_and_tpp.main import run_eval
        from sae_bench.sae_bench_utils.activation_collection import LLM_NAME_TO_BATCH_SIZE, LLM_NAME_TO_DTYPE

        selected = [(Path(path).name, SAE.load_from_disk(str(path), device=device)) for path in sae_paths]
        status = {}
        for name in evals:
            config = ScrAndTppEvalConfig(
                model_name=model_name,
                perform_scr=name == "scr",
                llm_batch_size=LLM_NAME_TO_BATCH_SIZE.get(model_name, 32),
                llm_dtype=LLM_NAME_TO_DTYPE.get(model_name, "float32"),
            )
            run_eval(config, selected, device, str(out), artifacts_path=str(out / "saebench_artifacts"))
            status[name] = f"done: results in {out / name}"
    (out / STATUS_FILENAME).write_text(json.dumps(status, indent=2))
    return status
