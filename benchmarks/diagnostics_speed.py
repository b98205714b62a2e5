"""Block-wise representation diagnostics vs dense computations, side by side in one run.

1. ``instance_retrieval`` with labels on ``n × 128`` features (default n = 40,000, 10 labels)
   against a dense torch computation: the full ``n × n`` float32 similarity, masked in place by
   label, argmax per row.
2. ``uniformity`` on ``n_u × 128`` points (default 20,000) against the dense form of Wang & Isola
   (``torch.pdist(z).pow(2).mul(-t).exp().mean().log()``) in float64.

Each method runs in its own fresh process on the same inputs (made from the same seed), so the
memory figures do not mix. Measured per method:

- time of the call (best of ``--repeats``);
- peak RSS increase: ``ru_maxrss`` after the call minus the resident size just before it (counts
  numpy and torch allocations alike, to the page);
- for the block-wise (numpy) paths also the tracemalloc peak of the call.

Analytic figures (the bytes of the largest intermediates) are printed beside them.

Run from the repository root: ``PYTHONPATH=. python benchmarks/diagnostics_speed.py [--n 40000]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from ceco_fair.metrics import instance_retrieval, uniformity

DIM = 128
N_LABELS = 10
T = 2.0


def inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    view1 = rng.normal(size=(n, DIM))
    view2 = view1 + 3.0 * rng.normal(size=(n, DIM))
    return view1, view2, rng.integers(0, N_LABELS, size=n)


def dense_retrieval(view1: np.ndarray, view2: np.ndarray, labels: np.ndarray) -> float:
    a = torch.nn.functional.normalize(torch.from_numpy(view1).float(), dim=1)
    b = torch.nn.functional.normalize(torch.from_numpy(view2).float(), dim=1)
    group = torch.from_numpy(labels)
    sim = a @ b.T
    sim.masked_fill_(group[:, None] != group[None, :], float("-inf"))
    return float((sim.argmax(dim=1) == torch.arange(len(group))).double().mean())


def dense_uniformity(features: np.ndarray) -> float:
    z = torch.nn.functional.normalize(torch.from_numpy(features), dim=1)
    return float(torch.pdist(z, p=2).pow(2).mul(-T).exp().mean().log())


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def measure(task: str, n: int, repeats: int, seed: int) -> dict[str, Any]:
    """Run one method in this (fresh) process; return its value, time and memory."""
    view1, view2, labels = inputs(n, seed)
    calls: dict[str, Callable[[], float]] = {
        "retrieval_block": lambda: instance_retrieval(view1, view2, labels),
        "retrieval_dense": lambda: dense_retrieval(view1, view2, labels),
        "uniformity_block": lambda: uniformity(view1, T),
        "uniformity_dense": lambda: dense_uniformity(view1),
    }
    call = calls[task]
    before = resident_bytes()
    traced = task.endswith("block")
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    value = call()
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    peak_increase = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    for _ in range(repeats - 1):
        start = time.perf_counter()
        call()
        seconds = min(seconds, time.perf_counter() - start)
    return {"value": value, "seconds": seconds, "rss": peak_increase, "traced": traced_peak}


def run_isolated(task: str, n: int, repeats: int, seed: int) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, task, n, repeats, seed).result()


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3f} GiB"


def compare(title: str, block: dict[str, Any], dense: dict[str, Any], analytic: tuple[float, float]) -> None:
    print(f"\n## {title}")
    difference = abs(block["value"] - dense["value"])
    print(f"value    block {block['value']!r}  dense {dense['value']!r}  diff {difference:.3g}")
    print(
        f"time     block {block['seconds']:.2f} s  dense {dense['seconds']:.2f} s  "
        f"ratio block/dense {block['seconds'] / dense['seconds']:.2f}"
    )
    print(
        f"peak RSS increase  block {gib(block['rss'])}  dense {gib(dense['rss'])}  "
        f"ratio {block['rss'] / max(dense['rss'], 1):.3f}"
    )
    print(f"tracemalloc peak (block, numpy) {gib(block['traced'])}")
    print(
        f"analytic largest intermediates  block {gib(analytic[0])}  dense {gib(analytic[1])}  "
        f"ratio {analytic[0] / analytic[1]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="rows for instance_retrieval")
    parser.add_argument("--n-uniformity", type=int, default=20_000, help="points for uniformity")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, n_u, block = args.n, args.n_uniformity, 2048
    print(f"torch threads {torch.get_num_threads()}, dim {DIM}, {N_LABELS} labels, block_size {block}")

    retrieval = {kind: run_isolated(f"retrieval_{kind}", n, args.repeats, args.seed) for kind in ("block", "dense")}
    # block: float32 sims [block, n] + bool mask [block, n]; dense: float32 [n, n] + bool mask [n, n]
    compare(
        f"instance_retrieval, {n} x {DIM}, labels",
        retrieval["block"],
        retrieval["dense"],
        (min(block, n) * n * 5.0, n * n * 5.0),
    )
    uniform = {kind: run_isolated(f"uniformity_{kind}", n_u, args.repeats, args.seed) for kind in ("block", "dense")}
    pairs = n_u * (n_u - 1) / 2
    # block: float64 gram + exponent [block, n]; dense: float64 pdist and two same-size temporaries
    compare(
        f"uniformity, {n_u} x {DIM}, t = {T}",
        uniform["block"],
        uniform["dense"],
        (2 * min(block, n_u) * n_u * 8.0, 2 * pairs * 8.0),
    )


if __name__ == "__main__":
    main()
