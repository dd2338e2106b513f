"""How fast `sae-mask` answers: `--help`, a subcommand's `--help` and bad input, each a fresh process, next to
`python -c "import sae_lens"` and `import torch` measured in the same run. Target: `sae-mask --help`, every `--help`
and bad input <= 1 s on an idle 2-core machine (they import no torch, SAELens or SAEBench); checks that need SAELens
or a model (a recipe's fields and architectures, model and hook names) cost about one `import sae_lens`.

    python benchmarks/cli_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SAE_MASK = [sys.executable, "-m", "sae_mask_plugin.cli"]


def commands(scratch: str) -> dict[str, list[str]]:
    missing = os.path.join(scratch, "missing")
    return {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        'python -c "import sae_lens"': [sys.executable, "-c", "import sae_lens"],
        "sae-mask --help": [*SAE_MASK, "--help"],
        "sae-mask mask-tokens --help": [*SAE_MASK, "mask-tokens", "--help"],
        "sae-mask eval --help": [*SAE_MASK, "eval", "--help"],
        "sae-mask sweep --help": [*SAE_MASK, "sweep", "--help"],
        "sae-mask mask-tokens --p 2 (bad argument)": [*SAE_MASK, "mask-tokens", "--p", "2"],
        "sae-mask eval --sae X (missing --out)": [*SAE_MASK, "eval", "--sae", missing],
        "sae-mask train --help": [*SAE_MASK, "train", "--help"],
        "sae-mask train --p 2 (bad flag value)": [*SAE_MASK, "train", "--p", "2"],
        "sae-mask compare MISSING (missing folder)": [*SAE_MASK, "compare", missing, "--out", missing],
        "sae-mask eval --sae MISSING (missing folder)": [
            *SAE_MASK,
            "eval",
            "--sae",
            missing,
            "--out",
            missing,
        ],
        "sae-mask sweep no_such_recipe": [*SAE_MASK, "sweep", "no_such_recipe", "--dry-run"],
    }


def wall_time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        timed = commands(scratch)
        times: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(args.repeats):  # interleaved, so that every command sees the same load
            for name, argv in timed.items():
                times[name].append(wall_time(argv))
    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = medians['python -c "import sae_lens"']
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {args.repeats} fresh processes; {os.cpu_count()} CPUs, 1-min load average {load:.1f}")
    print(f"{'command':<44} {'seconds':>8} {'/ import sae_lens':>18}")
    for name, seconds in medians.items():
        print(f"{name:<44} {seconds:>8.2f} {seconds / reference:>18.2f}")


if __name__ == "__main__":
    main()
