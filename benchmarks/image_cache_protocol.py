"""A whole protocol on JPEG files, without the decoded-image cache, building it, and with it built.

The feature-extraction benchmark (``image_cache.py``) times one pass; a protocol makes many: each
training epoch, the probe's features of the train and test splits, the diagnostics. This script
generates a folder in CelebA's layout (``--images`` JPEGs of 178×218, as ``image_cache.py`` does),
writes a protocol (``ce`` and ``contex`` on small_conv, ``--image-size``, ``--epochs``, one seed,
no report) and runs ``python -m ceco_fair.run`` on it three times, one after the other:

1. cold: without ``data.cache_dir`` (every pass decodes the files, 2 loader workers);
2. build: with an empty cache folder (the first run that uses the cache pays for building it);
3. warm: with the cache built (every later run, shard and protocol).

Printed: the wall-clock seconds of each, the ratios to the cold run, and whether every run's
``metrics.json``, ``readouts.json`` and ``predictions.csv`` are byte-identical across the three.

Run from the repository root: ``PYTHONPATH=. python benchmarks/image_cache_protocol.py [--images 20000]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from image_cache import make_folder

from ceco_fair.results.layout import METRICS_FILE, PREDICTIONS_FILE, READOUTS_FILE, RUNS_DIR

COMPARED = (METRICS_FILE, READOUTS_FILE, PREDICTIONS_FILE)


def protocol(root: Path, image_size: int, epochs: int, cache_dir: Path | None) -> dict[str, object]:
    """The measured protocol: ``ce`` and ``contex`` on CelebA's Attractive vs Male, one seed."""
    data: dict[str, object] = {
        "dataset": "celeba",
        "root": str(root),
        "target": "Attractive",
        "sensitive": "Male",
        "image_size": image_size,
    }
    if cache_dir is not None:
        data["cache_dir"] = str(cache_dir)
    return {
        "name": "image_cache_protocol",
        "device": "cpu",
        "seeds": [0],
        "data": data,
        "encoder": {"arch": "small_conv", "feature_dim": 128, "projection_dim": 128},
        "methods": [{"name": "ce"}, {"name": "contex", "temperature": 0.1}],
        "train": {"epochs": epochs, "batch_size": 256, "num_workers": 2, "optimizer": {"name": "adam", "lr": 0.002}},
        "probe": {"epochs": 10},
        "eval": {"n_boot": 100},
        "report": False,
    }


def timed_run(base: Path, name: str, settings: dict[str, object]) -> float:
    """Write ``settings`` as ``base/name.yaml``, run it into ``base/name`` and return its wall-clock seconds."""
    path = base / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ceco_fair.run", str(path), "--output", str(base / name), "--quiet"],
        check=True,
    )
    return time.perf_counter() - started


def identical(base: Path, names: tuple[str, ...]) -> bool:
    """Whether every run's compared files are byte-identical across the outputs ``names``."""
    first = base / names[0] / RUNS_DIR
    runs = sorted(path.name for path in first.iterdir())
    return all(
        (first / run / file).read_bytes() == (base / other / RUNS_DIR / run / file).read_bytes()
        for run in runs
        for file in COMPARED
        for other in names[1:]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="JPEG files in the generated folder")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="pretraining epochs of each method")
    parser.add_argument("--folder", type=Path, default=None, help="where to generate (default: a temporary folder)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="image_cache_protocol_", dir=args.folder))
    try:
        make_folder(base / "data", args.images)
        cache = base / "cache"
        seconds = {
            "cold": timed_run(base, "cold", protocol(base / "data", args.image_size, args.epochs, None)),
            "build": timed_run(base, "build", protocol(base / "data", args.image_size, args.epochs, cache)),
            "warm": timed_run(base, "warm", protocol(base / "data", args.image_size, args.epochs, cache)),
        }
        size = sum(path.stat().st_size for path in cache.glob("images-*.npy"))
        print(
            f"{args.images} images at {args.image_size} px, ce + contex, {args.epochs} epochs, one seed; "
            f"{os.cpu_count()} CPUs; cache {size / 1e6:.1f} MB"
        )
        for name, value in seconds.items():
            print(f"{name:<6}{value:10.1f} s{seconds['cold'] / value:8.2f}x the cold run's speed")
        print(f"metrics, read-outs and predictions byte-identical in all three: {identical(base, tuple(seconds))}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
