"""Feature extraction from JPEG files (cold, decoding each image) vs from the decoded-image cache (warm).

A folder in CelebA's layout is generated first: ``--images`` JPEG files of 178×218 (default
20,000) of smooth random content (cycling through 1,000 distinct images), with
``list_attr_celeba.txt`` and ``list_eval_partition.txt`` at the official partition shares
(80 / 10 / 10 %). Then, in one run, on the train split:

1. build: ``CelebA(..., cache_dir=...)`` on an empty cache folder (listing the files, hashing their
   sizes and times, decoding each image once into the memory-mapped array);
2. open: the same construction again, the cache now present (what every later run pays);
3. cold: ``extract_features`` through the ``DataLoader`` (``--workers`` decoding processes), as
   without ``data.cache_dir``;
4. warm: ``extract_features`` from the cache.

Cold and warm passes alternate ``--repeats`` times (best of each is kept), timed in wall-clock
seconds and in CPU seconds of this process and its decoding workers (steadier on a shared machine).
Both passes must give the same features, checked. Each of ``--arch`` is measured (default: ``load``,
producing the uint8 batches only, which is what the cache replaces; ``none``, feature extraction
with each image's mean colour as its feature, no network, so normalisation included; and
``small_conv``). For each network a third pass applies it alone to the normalised images already
in memory: no loader, cached or not, can make feature extraction faster than cold / network, the
ceiling printed beside the speed-up. Printed: images/s of each pass, the warm/cold speed-up, that
ceiling and the build cost in seconds and in cold passes.

With ``--device cuda`` the encoders run on the GPU and the warm passes read the cached array
copied to it once, as the runner does (``--workers``: more decoding processes for the cold passes
on a machine with more cores).

Run from the repository root: ``PYTHONPATH=. python benchmarks/image_cache.py [--images 20000]
[--device cpu|cuda] [--arch load none small_conv resnet18]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.io import encode_jpeg

from ceco_fair.data.augment import AugmentConfig, normalize
from ceco_fair.data.celeba import CelebA
from ceco_fair.evaluation.probe import extract_features
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.batches import chunk_indices, iterate_batches

HEIGHT, WIDTH = 218, 178
ATTRIBUTES = ("Attractive", "Male", "Young")
SHARES = (0.8, 0.1, 0.1)
BATCH = 256
POOL = 1000
"""Distinct images generated; the files cycle through them (decoding costs the same)."""


def smooth_image(rng: np.random.Generator) -> torch.Tensor:
    """A ``uint8 [3, 218, 178]`` image of smooth random colour (JPEG sizes near real faces)."""
    coarse = torch.from_numpy(rng.random((1, 3, 14, 12), dtype=np.float32) * 255)
    image = nn.functional.interpolate(coarse, size=(HEIGHT, WIDTH), mode="bicubic", align_corners=False)[0]
    noise = torch.from_numpy(rng.normal(0, 6, (3, HEIGHT, WIDTH)).astype(np.float32))
    return (image + noise).round().clamp(0, 255).to(torch.uint8)


def make_folder(root: Path, n_images: int, seed: int = 0) -> float:
    """Write ``n_images`` JPEGs and the two tables in CelebA's layout under ``root/celeba``.

    Returns:
        The mean JPEG size in KB.

    """
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = [f"{index:06d}.jpg" for index in range(1, n_images + 1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small image at a time: threads only add overhead
    try:
        pool = [encode_jpeg(smooth_image(rng), quality=90).numpy().tobytes() for _ in range(min(POOL, n_images))]
    finally:
        torch.set_num_threads(threads)
    total = 0
    for index, name in enumerate(names):
        data = pool[index % len(pool)]
        (images / name).write_bytes(data)
        total += len(data)
    values = rng.choice([-1, 1], size=(n_images, len(ATTRIBUTES)))
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values, strict=True)]
    (folder / "list_attr_celeba.txt").write_text(f"{n_images}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(rows) + "\n")
    bounds = np.cumsum(SHARES)[:-1] * n_images
    parts = np.searchsorted(bounds, np.arange(n_images), side="right")
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, parts, strict=True)))
    return total / n_images / 1000


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the loader's decoding workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_features(
    encoder: nn.Module | None, dataset: CelebA, workers: int, device: torch.device
) -> tuple[float, float, torch.Tensor]:
    """Wall-clock and CPU seconds of one feature extraction pass over ``dataset``, and its features.

    Without an encoder: only the uint8 batches are produced (the loading itself); the "features"
    are then the images, concatenated after the clock stops.
    """
    synchronize(device)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    if encoder is None:
        batches = chunk_indices(torch.arange(len(dataset)), BATCH, drop_last=False)
        loaded = [images for images, _, _ in iterate_batches(dataset, batches, device=device, num_workers=workers)]
    else:
        features = extract_features(
            encoder, dataset, device=device, batch_size=BATCH, num_workers=workers, progress=False
        ).features
    synchronize(device)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    return wall, cpu, torch.cat(loaded).cpu() if encoder is None else features


def timed_network(encoder: nn.Module, dataset: CelebA, device: torch.device) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``encoder`` alone over the dataset's normalised images.

    The batches are read from the cache and normalised before the clock starts, so this is the
    time no loader can remove: the lower bound of any feature extraction pass with this network.
    """
    images = dataset.images
    assert images is not None, "the network-only pass reads the cached images"
    batches = [normalize(batch.to(device), AugmentConfig()) for batch in torch.split(images, BATCH)]
    synchronize(device)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    with torch.no_grad():
        for batch in batches:
            encoder(batch)
    synchronize(device)
    return time.perf_counter() - started, cpu_seconds() - cpu_started


def named_encoder(arch: str, device: torch.device) -> nn.Module | None:
    """``arch`` of :func:`build_encoder`; ``none``: each image's mean colour (no network); ``load``: nothing."""
    torch.manual_seed(0)
    if arch == "load":
        return None
    if arch == "none":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return build_encoder(arch, feature_dim=128).to(device)


def compare(
    arch: str, cold_set: CelebA, warm_set: CelebA, workers: int, repeats: int, device: torch.device
) -> list[tuple[float, float, float | None]]:
    """``(cold, warm, network)`` seconds, wall-clock then CPU, each the best over ``repeats`` alternating passes.

    ``network`` is the encoder alone (:func:`timed_network`), ``None`` without a network.
    """
    encoder = named_encoder(arch, device)
    if encoder is not None:
        encoder.eval()
    cold_times, warm_times, network_times = [], [], []
    for _ in range(repeats):
        wall, cpu, cold_features = timed_features(encoder, cold_set, workers, device)
        cold_times.append((wall, cpu))
        wall, cpu, warm_features = timed_features(encoder, warm_set, 0, device)
        warm_times.append((wall, cpu))
        assert torch.equal(cold_features, warm_features), "cached features differ from decoded ones"
        if isinstance(encoder, nn.Module) and arch != "none":
            network_times.append(timed_network(encoder, warm_set, device))
    return [
        (
            min(c[k] for c in cold_times),
            min(w[k] for w in warm_times),
            min(t[k] for t in network_times) if network_times else None,
        )
        for k in (0, 1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="JPEG files in the generated folder")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--arch",
        nargs="+",
        default=["load", "none", "small_conv"],
        help="encoders; none: no network; load: loading only",
    )
    parser.add_argument("--workers", type=int, default=2, help="decoding processes of the cold pass")
    parser.add_argument("--device", default="cpu", help="where the encoders run (cpu, cuda)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=None, help="where to generate (default: a temporary folder)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.deterministic = True  # cold and warm features are compared for equality
    base = Path(tempfile.mkdtemp(prefix="image_cache_", dir=args.folder))
    try:
        started = time.perf_counter()
        kilobytes = make_folder(base / "data", args.images)
        seconds = time.perf_counter() - started
        print(f"generated {args.images} JPEGs of {WIDTH}x{HEIGHT} ({kilobytes:.1f} KB each) in {seconds:.1f} s")

        def train_split(cache_dir: Path | None = None) -> CelebA:
            return CelebA(base / "data", "train", "Attractive", "Male", image_size=args.image_size, cache_dir=cache_dir)

        cold_set = train_split()
        cache = base / "cache"
        started, cpu_started = time.perf_counter(), cpu_seconds()
        train_split(cache)
        build, build_cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        started = time.perf_counter()
        warm_set = train_split(cache)
        opening = time.perf_counter() - started
        n = len(cold_set)
        size = sum(path.stat().st_size for path in cache.glob("images-*.npy"))
        print(
            f"train split: {n} images at {args.image_size}x{args.image_size} on {device}; {os.cpu_count()} CPUs, "
            f"torch threads {torch.get_num_threads()}, cold passes with {args.workers} decoding workers, "
            f"best of {args.repeats}"
        )
        header = (
            *("encoder", "clock", "cold s", "cold img/s", "warm s", "warm img/s", "warm/cold"),
            *("network s", "ceiling"),
        )
        print(f"{header[0]:<12}{header[1]:<6}" + "".join(f"{h:>12}" for h in header[2:]))
        first_cold: list[float] = []
        for arch in args.arch:
            timings = compare(arch, cold_set, warm_set, args.workers, args.repeats, device)
            for clock, (cold, warm, network) in zip(("wall", "CPU"), timings, strict=True):
                first_cold.append(cold)
                cells = (f"{cold:.2f}", f"{n / cold:.0f}", f"{warm:.2f}", f"{n / warm:.0f}", f"{cold / warm:.1f}x")
                bound = ("-", "-") if network is None else (f"{network:.2f}", f"{cold / network:.1f}x")
                print(f"{arch:<12}{clock:<6}" + "".join(f"{cell:>12}" for cell in (*cells, *bound)))
        print(
            f"build: {build:.2f} s wall ({build / first_cold[0]:.2f} cold passes of {args.arch[0]}), "
            f"{build_cpu:.2f} CPU s ({build_cpu / first_cold[1]:.2f}); {size / 1e6:.1f} MB on disk; "
            f"opening the built cache: {opening:.2f} s"
        )
        print(
            "ceiling: cold / network alone, the largest warm/cold any loader could reach with that network "
            "on this machine"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
