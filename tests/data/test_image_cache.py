"""The decoded-image cache: same pixels as decoding, keyed by the files, built once, atomic, checked."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tiny_protocol import tiny_protocol_dict
from torchvision.io import encode_jpeg, encode_png

from ceco_fair.data import image_cache
from ceco_fair.data.celeba import CelebA
from ceco_fair.data.image_cache import CACHE_VERSION, ImageCache, cache_bytes, format_bytes
from ceco_fair.data.images import FileImageDataset, read_image
from ceco_fair.data.utkface import UTKFace
from ceco_fair.errors import DataError
from ceco_fair.results.layout import LOG_FILE, METRICS_FILE, PREDICTIONS_FILE, PROJECTION_FILE, RESULTS_CSV, RUNS_DIR
from ceco_fair.run import main
from ceco_fair.runner.protocol import load_protocol
from ceco_fair.training.batches import BatchSource, fits_on

ROOT = Path(__file__).resolve().parents[2]
BUILD_LINE = "image cache: decoding"


def noise_jpeg(seed: int, size: tuple[int, int] = (218, 178)) -> bytes:
    """A JPEG of random 8x8 colour blocks: resizing it changes every pixel, unlike a solid colour."""
    blocks = np.random.default_rng(seed).integers(0, 256, (3, size[0] // 8 + 1, size[1] // 8 + 1), dtype=np.uint8)
    image = torch.from_numpy(
        np.ascontiguousarray(np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)[:, : size[0], : size[1]])
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # much faster for one small image on a busy machine
    try:
        return bytes(encode_jpeg(image, quality=90).numpy().tobytes())
    finally:
        torch.set_num_threads(threads)


@functools.cache
def noise_jpegs(count: int) -> tuple[bytes, ...]:
    """``noise_jpeg(0)`` … ``noise_jpeg(count - 1)``, made once per test session."""
    return tuple(noise_jpeg(seed) for seed in range(count))


@pytest.fixture
def celeba_root(make_celeba: Callable[..., Path]) -> Path:
    """The CelebA fixture (200 rows: 160 train, 20 valid, 20 test) with a different image per file."""
    root = make_celeba()
    paths = sorted((root / "celeba" / "img_align_celeba").iterdir())
    for path, data in zip(paths, noise_jpegs(len(paths)), strict=True):
        path.write_bytes(data)
    return root


def stacked(dataset: Any) -> torch.Tensor:
    """Every item's image, read one by one, as ``[n, 3, S, S]``."""
    return torch.stack([dataset[index][0] for index in range(len(dataset))])


def test_cached_pixels_equal_decoded_pixels(celeba_root: Path, tmp_path: Path) -> None:
    for crop in (None, 160):
        plain = CelebA(celeba_root, "test", image_size=24, crop=crop)
        cached = CelebA(celeba_root, "test", image_size=24, crop=crop, cache_dir=tmp_path / "cache")
        assert plain.images is None
        images = cached.images
        assert images is not None and images.dtype == torch.uint8 and images.shape == (20, 3, 24, 24)
        expected = stacked(plain)
        assert torch.equal(images, expected) and torch.equal(stacked(cached), expected)
    assert len(list((tmp_path / "cache").glob("images-*.npy"))) == 2  # one per crop


def test_second_open_reads_without_decoding(
    celeba_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = sorted((celeba_root / "celeba" / "img_align_celeba").iterdir())[:10]
    calls: list[Path] = []

    def load(path: Path) -> torch.Tensor:
        calls.append(path)
        return read_image(path, 16, None)

    first = ImageCache(tmp_path, files, 16, None).open(load, workers=0)
    assert calls == files
    with caplog.at_level(logging.INFO, logger="ceco_fair.data.image_cache"):
        second = ImageCache(tmp_path, files, 16, None).open(load, workers=0)
    assert calls == files  # nothing decoded again
    assert f"image cache: reading 10 images of 16 px from {second.path}" in caplog.messages
    assert torch.equal(first.array, second.array)
    assert second.path.stat().st_size == cache_bytes(10, 16) == 128 + 10 * 3 * 16 * 16
    # Another size, crop or order of the same files is another cache.
    keys = {
        ImageCache(tmp_path, f, s, c).key
        for f, s, c in [(files, 16, None), (files, 8, None), (files, 16, (100, 100)), (files[::-1], 16, None)]
    }
    assert len(keys) == 4


def test_a_changed_file_is_seen_by_the_next_run(celeba_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = CelebA(celeba_root, "test", image_size=24, cache_dir=cache)
    assert before.images is not None
    changed = before.files[3]
    changed.write_bytes(noise_jpeg(999))
    after = CelebA(celeba_root, "test", image_size=24, cache_dir=cache)
    plain = CelebA(celeba_root, "test", image_size=24)
    assert after.images is not None
    assert torch.equal(after.images, stacked(plain))
    assert not torch.equal(after.images[3], before.images[3])
    assert torch.equal(after.images[4:], before.images[4:])
    assert len(list(cache.glob("images-*.npy"))) == 2  # the old list's cache and the new one


def test_a_png_changed_in_place_with_its_size_kept_is_seen(tmp_path: Path) -> None:
    """Same byte count, new content: the modification time alone tells the caches apart."""
    path = tmp_path / "image.png"
    first = torch.zeros(3, 8, 8, dtype=torch.uint8)
    path.write_bytes(bytes(encode_png(first, compression_level=0).numpy().tobytes()))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    cache = ImageCache(tmp_path / "cache", [path], 8, None).open(lambda p: read_image(p, 8, None), workers=0)
    second = torch.full((3, 8, 8), 200, dtype=torch.uint8)
    path.write_bytes(bytes(encode_png(second, compression_level=0).numpy().tobytes()))
    assert path.stat().st_size == len(encode_png(first, compression_level=0))
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    again = ImageCache(tmp_path / "cache", [path], 8, None).open(lambda p: read_image(p, 8, None), workers=0)
    assert torch.equal(cache.array[0], first) and torch.equal(again.array[0], second)


@pytest.mark.parametrize("damage", ["truncated", "foreign", "version", "no description"])
def test_a_damaged_cache_is_rebuilt_with_one_log_line(
    celeba_root: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    reference = CelebA(celeba_root, "test", image_size=24, cache_dir=cache).images
    assert reference is not None
    reference = reference.clone()  # the damage below writes into the mapped file itself
    array = next(cache.glob("images-*.npy"))
    meta = array.with_suffix(".json")
    if damage == "truncated":
        array.write_bytes(array.read_bytes()[:-100])
    elif damage == "foreign":
        array.write_bytes(b"not an array at all" * 100)
    elif damage == "version":
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "version": CACHE_VERSION + 1}))
    else:
        meta.unlink()
    with caplog.at_level(logging.INFO, logger=image_cache.__name__):
        rebuilt = CelebA(celeba_root, "test", image_size=24, cache_dir=cache).images
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == image_cache.__name__
    ]
    assert len(warnings) == 1 and "rebuilding" in warnings[0] and str(array) in warnings[0]
    assert any(BUILD_LINE in r.getMessage() for r in caplog.records)
    assert rebuilt is not None and torch.equal(rebuilt, reference)


def test_the_size_is_logged_before_building(
    celeba_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=image_cache.__name__):
        CelebA(celeba_root, "train", image_size=32, cache_dir=tmp_path / "cache")
    (line,) = [r.getMessage() for r in caplog.records if BUILD_LINE in r.getMessage()]
    assert "160 images" in line and format_bytes(cache_bytes(160, 32)) in line and "32x32" in line


def test_unwritable_folder_is_one_error_naming_folder_and_size(celeba_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    folder = blocker / "cache"
    with pytest.raises(DataError) as error:
        CelebA(celeba_root, "test", image_size=24, cache_dir=folder)
    message = str(error.value)
    assert "\n" not in message and str(folder) in message and format_bytes(cache_bytes(20, 24)) in message


def test_no_room_is_one_error_and_nothing_is_written(
    celeba_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setattr(image_cache.shutil, "disk_usage", lambda _: _Usage(1000))
    calls: list[Path] = []
    original = image_cache._Decoded.__getitem__

    def counting(self: Any, index: int) -> Any:
        calls.append(self.files[index])
        return original(self, index)

    monkeypatch.setattr(image_cache._Decoded, "__getitem__", counting)
    with pytest.raises(DataError) as error:
        CelebA(celeba_root, "test", image_size=24, cache_dir=folder)
    message = str(error.value)
    assert str(folder) in message and "1.00 KB free" in message and format_bytes(cache_bytes(20, 24)) in message
    assert not calls and not list(folder.glob("images-*"))


class _Usage:
    """What :func:`shutil.disk_usage` returns, with only ``free`` read."""

    def __init__(self, free: int) -> None:
        self.free = free


def test_a_killed_build_leaves_no_cache_that_is_read(celeba_root: Path, tmp_path: Path) -> None:
    files = sorted((celeba_root / "celeba" / "img_align_celeba").iterdir())[:100]
    folder = tmp_path / "cache"

    def dying(path: Path) -> torch.Tensor:
        if path == files[70]:
            raise KeyboardInterrupt
        return read_image(path, 16, None)

    cache = ImageCache(folder, files, 16, None)
    with pytest.raises(KeyboardInterrupt):
        cache.open(dying, workers=0)
    assert cache.read() == (None, None) and not list(folder.glob("*.npy*"))
    # A SIGKILLed build leaves its temporary file: never read, removed by the next build.
    leftover = folder / f".{cache.array_path.name}.abc123.tmp"
    leftover.write_bytes(b"\0" * 1000)
    opened = cache.open(lambda path: read_image(path, 16, None), workers=0)
    assert not leftover.exists() and opened.array.shape == (100, 3, 16, 16)


def test_utkface_preflight_uses_the_build_and_undecodable_files_behave_as_without_cache(
    make_utkface: Callable[..., Path], utk: Any, tmp_path: Path
) -> None:
    root = make_utkface(n=120)
    options: dict[str, Any] = {"split": "train", "image_size": 16, "seed": 0, "race_binary": True}
    corrupt_in_train = utk.corrupt in [p.name for p in UTKFace(root, **options).files]
    for seed in range(20):
        if corrupt_in_train:
            break
        options["seed"] = seed
        corrupt_in_train = utk.corrupt in [p.name for p in UTKFace(root, **options).files]
    assert corrupt_in_train
    cache = tmp_path / "cache"
    plain = UTKFace(root, preflight=True, bias_rate=0.8, **options)
    cached = UTKFace(root, preflight=True, bias_rate=0.8, cache_dir=cache, **options)
    assert cached.files == plain.files and cached.skipped == plain.skipped
    assert utk.corrupt in [name for name, _ in cached.skipped]
    assert cached.images is not None and torch.equal(cached.images, stacked(plain))
    unchecked = UTKFace(root, cache_dir=cache, **options)
    with pytest.raises(DataError, match=f"cannot decode image file .*{utk.corrupt}"):
        _ = unchecked.images
    position = [p.name for p in unchecked.files].index(utk.corrupt)
    with pytest.raises(DataError, match="preflight=True"):
        unchecked[position]


def test_utkface_splits_seeds_and_attribute_pairs_share_one_cache_of_the_folder(
    make_utkface: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_utkface(n=120)
    cache = tmp_path / "cache"
    variants: list[dict[str, Any]] = [
        {"split": split, "seed": seed, "target": target, "sensitive": sensitive}
        for split in ("train", "test")
        for seed in (0, 1)
        for target, sensitive in (("gender", "race"), ("race", "gender"))
    ]
    with caplog.at_level(logging.INFO, logger="ceco_fair.data.image_cache"):
        for options in variants:
            plain = UTKFace(root, image_size=16, preflight=True, **options)
            cached = UTKFace(root, image_size=16, preflight=True, cache_dir=cache, **options)
            assert cached.files == plain.files
            assert cached.images is not None and torch.equal(cached.images, stacked(plain)), options
            assert torch.equal(stacked(cached), stacked(plain))
    assert len(list(cache.glob("images-*.npy"))) == 1
    assert sum(BUILD_LINE in record.getMessage() for record in caplog.records) == 1  # decoded once, for all 8


def test_cache_files_must_hold_every_file_of_the_dataset(celeba_root: Path, tmp_path: Path) -> None:
    files = sorted((celeba_root / "celeba" / "img_align_celeba").iterdir())[:4]
    labels = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match=f"lacks 1 of the dataset's files, e.g. {files[3]}"):
        FileImageDataset(
            files,
            labels,
            labels,
            pd.DataFrame(index=range(4)),
            image_size=8,
            crop=None,
            skipped=[],
            cache_dir=tmp_path / "cache",
            cache_files=files[:3],
        )


def test_cached_datasets_are_gathered_in_memory(celeba_root: Path, tmp_path: Path) -> None:
    dataset = CelebA(celeba_root, "test", image_size=16, cache_dir=tmp_path / "cache")
    source = BatchSource(dataset)
    assert source.tensors is not None
    ((images, targets, _),) = list(source([torch.tensor([5, 1, 2])]))
    assert torch.equal(images, stacked(dataset)[[5, 1, 2]]) and torch.equal(targets, dataset.targets[[5, 1, 2]])


def test_fits_on_keeps_to_half_the_free_accelerator_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 4000))
    assert fits_on(torch.device("cpu"), 10**15)
    assert fits_on(torch.device("cuda"), 500) and not fits_on(torch.device("cuda"), 501)


def celeba_protocol(folder: Path, root: Path, **data: Any) -> Path:
    """A tiny CelebA protocol (two methods, a few batches of 16 px images) in ``folder``."""
    raw = tiny_protocol_dict(
        train={"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 2},
        probe={"epochs": 2, "batch_size": 64},
        eval={"n_boot": 0, "projection_points": 20},
    )
    raw["data"] = {
        "dataset": "celeba",
        "root": str(root),
        "target": "Attractive",
        "sensitive": "Male",
        "image_size": 16,
    }
    raw["data"].update(data)
    path = folder / "protocol.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_protocol_results_are_identical_with_and_without_cache(celeba_root: Path, tmp_path: Path) -> None:
    plain = celeba_protocol(tmp_path / "plain", celeba_root)
    cached = celeba_protocol(tmp_path / "cached", celeba_root, cache_dir="image_cache")
    assert main([str(plain), "--output", str(tmp_path / "out_plain"), "--quiet"]) == 0
    assert main([str(cached), "--output", str(tmp_path / "out_cached"), "--quiet"]) == 0
    caches = sorted((tmp_path / "cached" / "image_cache").glob("images-*.npy"))
    assert len(caches) == 2  # train and test
    builds = [line for line in (tmp_path / "out_cached" / LOG_FILE).read_text().splitlines() if BUILD_LINE in line]
    # the train split's cache is built by the checks before the output folder exists: run.log has it all the same
    assert sorted(line.split(" into ")[1].split(" (")[0] for line in builds) == [str(path) for path in caches]
    assert (tmp_path / "out_plain" / RESULTS_CSV).read_text() == (tmp_path / "out_cached" / RESULTS_CSV).read_text()
    for run in (tmp_path / "out_plain" / RUNS_DIR).iterdir():
        for name in (METRICS_FILE, PREDICTIONS_FILE, PROJECTION_FILE):
            assert (run / name).read_bytes() == (tmp_path / "out_cached" / RUNS_DIR / run.name / name).read_bytes()


def test_two_shards_started_together_build_the_cache_once(celeba_root: Path, tmp_path: Path) -> None:
    protocol = celeba_protocol(tmp_path, celeba_root, cache_dir="image_cache")
    output = tmp_path / "out"
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    shards = [
        subprocess.Popen(
            [sys.executable, "-m", "ceco_fair.run", str(protocol), "--output", str(output), "--shard", shard],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for shard in ("1/2", "2/2")
    ]
    logs = []
    for shard in shards:
        _, errors = shard.communicate(timeout=600)
        assert shard.returncode == 0, errors[-3000:]
        logs.append(errors)
    builds = [line for log in logs for line in log.splitlines() if BUILD_LINE in line]
    caches = sorted((tmp_path / "image_cache").glob("images-*.npy"))
    assert len(caches) == 2 and len(builds) == 2  # train and test, each built by one shard only
    assert sorted(str(path) for path in caches) == sorted(line.split(" into ")[1].split(" (")[0] for line in builds)
    assert len(list((output / RUNS_DIR).iterdir())) == 2


def test_relative_cache_dir_starts_at_the_protocol_file(celeba_root: Path, tmp_path: Path) -> None:
    path = celeba_protocol(tmp_path / "study", celeba_root, cache_dir="image_cache")
    protocol = load_protocol(path)
    assert protocol.data["cache_dir"] == str((tmp_path / "study" / "image_cache").resolve())
    assert not (tmp_path / "study" / "image_cache").exists()  # validation writes nothing
    for name in ("celeba", "utkface"):
        shipped = load_protocol(ROOT / "protocols" / f"{name}.yaml", check_data=False)
        assert shipped.data["cache_dir"] == str((ROOT / "protocols" / "data" / "image_cache").resolve())


class FolderFaces(FileImageDataset):
    """A dataset of one's own on the file-image base: every JPEG of a folder, alternating labels."""

    metric_kind = "group"
    takes_rho = False

    def __init__(self, root: Path, split: str = "train", *, cache_dir: Path | None = None) -> None:
        files = sorted(root.glob("*.jpg"))
        labels = np.arange(len(files), dtype=np.int64) % 2
        table = pd.DataFrame({"file": [path.name for path in files]})
        super().__init__(
            files, labels, labels[::-1].copy(), table, image_size=20, crop=None, skipped=[], cache_dir=cache_dir
        )


def test_a_dataset_of_ones_own_on_the_file_image_base_takes_the_cache(celeba_root: Path, tmp_path: Path) -> None:
    folder = celeba_root / "celeba" / "img_align_celeba"
    plain, cached = FolderFaces(folder), FolderFaces(folder, cache_dir=tmp_path / "cache")
    assert cached.images is not None and torch.equal(cached.images, stacked(plain))
    cached.keep(np.arange(len(cached)) % 3 == 0)
    plain.keep(np.arange(len(plain)) % 3 == 0)
    assert cached.images is not None and torch.equal(cached.images, stacked(plain))


def test_cli_stops_on_an_unwritable_cache_folder_before_writing(
    celeba_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blocker").write_text("a file where the cache folder should go")
    protocol = celeba_protocol(tmp_path, celeba_root, cache_dir=str(tmp_path / "blocker" / "cache"))
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error:") and str(tmp_path / "blocker" / "cache") in errors[0]
    assert format_bytes(cache_bytes(160, 16)) in errors[0] and not output.exists()


def test_the_benchmark_runs_and_prints_each_speed_up_beside_its_ceiling(tmp_path: Path) -> None:
    """A tiny run of ``benchmarks/image_cache.py``: it checks cold == warm features itself and must print the table."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks" / "image_cache.py"),
            "--images",
            "40",
            "--repeats",
            "1",
            "--folder",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {tuple(line.split()[:2]): line.split() for line in result.stdout.splitlines() if line.split()[:1]}
    assert rows[("small_conv", "wall")][-1].endswith("x"), "a network row carries its ceiling"
    assert rows[("load", "wall")][-1] == "-", "the loading row has no network, so no ceiling"
    assert "opening the built cache" in result.stdout
    assert not list(tmp_path.iterdir()), "the generated images and cache are removed afterwards"


def test_quiet_runs_draw_no_progress_bar_not_even_the_cache_build(
    celeba_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    protocol = celeba_protocol(tmp_path, celeba_root, cache_dir="image_cache")
    assert main([str(protocol), "--output", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert capfd.readouterr().err == ""
    (tmp_path / "image_cache").rename(tmp_path / "built_before")
    assert main([str(protocol), "--output", str(tmp_path / "shown")]) == 0
    assert "caching CelebA images" in capfd.readouterr().err
