"""Wall-clock of one protocol grid: one process against ``--shard 1/N … N/N`` running in parallel.

Side by side in one run, alternating to share the machine's noise: a 4-run grid (2 methods × 2 seeds
of the quickstart's BiasedMNIST embedded data, small_conv, a few batches per epoch) run by one
``python -m ceco_fair.run`` process, then by ``--shards`` processes started together into one folder.
Each process gets ``--threads`` intra-op threads (one each by default, so N shards use N cores).
Prints the median wall-clock of each and the ratio one process / shards; it also checks that both
folders' ``results.csv`` list the same runs. On a machine with fewer cores than shards expect no gain:
the point there is the mechanism.

Run: python benchmarks/shard_wallclock.py [--shards 2] [--repeats 2] [--epochs 2] [--batches 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from ceco_fair.results.layout import RESULTS_CSV

ROOT = Path(__file__).resolve().parents[1]


def grid_protocol(epochs: int, batches: int) -> dict[str, object]:
    """2 methods × 2 seeds at ρ = 0.99: four runs."""
    return {
        "name": "shard-wallclock",
        "device": "cpu",
        "seeds": [0, 1],
        "data": {"dataset": "biased_mnist", "source": "embedded", "rho": [0.99]},
        "encoder": {"arch": "small_conv", "feature_dim": 32, "projection_dim": 32},
        "methods": [{"name": "supcon"}, {"name": "contex", "temperature": 0.1}],
        "train": {"epochs": epochs, "batch_size": 128, "max_batches_per_epoch": batches},
        "probe": {"epochs": 5},
        "eval": {"n_boot": 0, "projection_points": 100},
        "report": False,
    }


def timed(protocol: Path, output: Path, shards: int, threads: int) -> float:
    """Seconds until every process (one, or ``shards`` shards) has finished."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    base = [sys.executable, "-m", "ceco_fair.run", str(protocol), "--output", str(output), "--quiet"]
    commands = [base] if shards == 1 else [[*base, "--shard", f"{k}/{shards}"] for k in range(1, shards + 1)]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=ROOT, env=env) for command in commands]
    codes = [process.wait() for process in processes]
    elapsed = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"a run failed: exit statuses {codes}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        protocol = folder / "protocol.yaml"
        protocol.write_text(yaml.safe_dump(grid_protocol(args.epochs, args.batches)), encoding="utf-8")
        single: list[float] = []
        sharded: list[float] = []
        for repeat in range(args.repeats):
            single.append(timed(protocol, folder / f"one-{repeat}", 1, args.threads))
            sharded.append(timed(protocol, folder / f"shards-{repeat}", args.shards, args.threads))
            runs = [set(pd.read_csv(folder / f"{kind}-{repeat}" / RESULTS_CSV)["run_id"]) for kind in ("one", "shards")]
            if runs[0] != runs[1] or len(runs[0]) != 4:
                raise SystemExit(f"the folders differ: {runs}")
    one, many = statistics.median(single), statistics.median(sharded)
    print(f"4-run grid, {args.threads} thread(s) per process, {os.cpu_count()} cores, {args.repeats} repeats")
    print(f"  1 process : {one:7.1f} s  (runs {', '.join(f'{t:.1f}' for t in single)})")
    print(f"  {args.shards} shards  : {many:7.1f} s  (runs {', '.join(f'{t:.1f}' for t in sharded)})")
    print(f"  speed-up 1 process / {args.shards} shards: {one / many:.2f}x")


if __name__ == "__main__":
    main()
