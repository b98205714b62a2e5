"""Fixture builders for the dataset tests: IDX files, UTKFace and CelebA folders in tmp_path."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg

MNIST_TEST_DIR = "mnist-test"
CELEBA_SAMPLE = Path("celeba-attr-sample") / "list_attr_celeba.txt"


@dataclass(frozen=True)
class UtkSpecialNames:
    """File names of the UTKFace fixture that are not plain well-formed images."""

    # Known malformed names of the public UTKFace release.
    no_race: tuple[str, ...] = (
        "39_1_20170116174525125.jpg.chip.jpg",
        "61_1_20170109142408075.jpg.chip.jpg",
        "61_1_20170109150557335.jpg.chip.jpg",
    )
    space: str = "24_0_1_20170116220224657 .jpg.chip.jpg"
    no_dot: str = "55_0_0_20170116232725357jpg.chip.jpg"
    corrupt: str = "30_1_2_20170199999999999.jpg.chip.jpg"
    not_image: str = "README.txt"
    # Solid colour of a generated face, by gender: the tests check decoded pixels against it.
    gender_colours: tuple[tuple[int, int, int], ...] = ((200, 40, 40), (40, 40, 200))


UTK = UtkSpecialNames()


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000080N, big-endian dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write an IDX file, gzipped when the name ends with .gz."""
    data = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random sparse 28x28 'digits' (about a third of pixels > 0) and balanced labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28)) * (rng.random((n, 28, 28)) < 0.3)
    labels = np.arange(n) % 10
    return images.astype(np.uint8), labels.astype(np.uint8)


def solid_jpeg(colour: Sequence[int], size: tuple[int, int] = (24, 24)) -> bytes:
    """A small JPEG of one colour."""
    image = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).expand(3, *size).contiguous()
    return bytes(encode_jpeg(image, quality=95).numpy().tobytes())


@pytest.fixture
def utk() -> UtkSpecialNames:
    """Special file names of the UTKFace fixture folder."""
    return UTK


@pytest.fixture
def idx_encode() -> Callable[[np.ndarray], bytes]:
    """Encoder of uint8 arrays into IDX bytes."""
    return idx_bytes


@pytest.fixture
def idx_write() -> Callable[[Path, np.ndarray], Path]:
    """Writer of IDX files (gzipped when the name ends with .gz)."""
    return write_idx


@pytest.fixture
def make_digits() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Generator of random 28x28 digit arrays and labels."""
    return synthetic_digits


@pytest.fixture
def utk_names() -> Callable[..., list[str]]:
    """Generator of well-formed UTKFace names (same as the fixture folder's)."""
    return utkface_names


@pytest.fixture
def mnist_test_dir(real_data: Path) -> Path:
    """The real MNIST test IDX files (t10k only)."""
    return real_data / MNIST_TEST_DIR


@pytest.fixture
def celeba_sample(real_data: Path) -> Path:
    """The real first 1,000 rows of CelebA's attribute file."""
    return real_data / CELEBA_SAMPLE


def utkface_names(n: int, seed: int = 0) -> list[str]:
    """Well-formed UTKFace names with random attributes (ages spanning every bin)."""
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        age = int(rng.integers(1, 80))
        gender = int(rng.integers(0, 2))
        race = int(rng.integers(0, 5))
        names.append(f"{age}_{gender}_{race}_{20170101000000000 + i}.jpg.chip.jpg")
    return names


@pytest.fixture
def make_utkface(tmp_path: Path) -> Callable[..., Path]:
    """Build ``tmp_path/<name>/UTKFace/`` with generated JPEGs, the known malformed names, a
    corrupt file and a non-image file; return the folder holding ``UTKFace/``."""

    def make(n: int = 240, name: str = "utk") -> Path:
        folder = tmp_path / name / "UTKFace"
        folder.mkdir(parents=True)
        jpegs = [solid_jpeg(colour) for colour in UTK.gender_colours]
        for file_name in [*utkface_names(n), *UTK.no_race, UTK.space, UTK.no_dot]:
            gender = int(file_name.split("_")[1])
            (folder / file_name).write_bytes(jpegs[gender])
        (folder / UTK.corrupt).write_bytes(b"this is not a jpeg" * 4)
        (folder / UTK.not_image).write_text("UTKFace copy\n")
        return folder.parent

    return make


def celeba_partition(index: int, n_rows: int) -> int:
    """Partition of the generated tables: 80% train, 10% valid, 10% test, in file order."""
    return 0 if index < int(n_rows * 0.8) else 1 if index < int(n_rows * 0.9) else 2


@pytest.fixture
def make_celeba(tmp_path: Path, celeba_sample: Path) -> Callable[..., Path]:
    """Build ``tmp_path/<name>/celeba/`` whose attribute file is the first rows of the real
    file byte for byte (CRLF, count 202599 kept), with a generated partition file and small
    JPEGs; ``missing`` names images not written; ``csv`` writes the Kaggle CSV variant."""

    def make(n_rows: int = 200, name: str = "celeba_root", missing: Sequence[str] = (), csv: bool = False) -> Path:
        folder = tmp_path / name / "celeba"
        images = folder / "img_align_celeba"
        images.mkdir(parents=True)
        lines = celeba_sample.read_bytes().split(b"\r\n")
        rows = lines[2 : 2 + n_rows]
        file_names = [row.split()[0].decode() for row in rows]
        if csv:
            names = lines[1].decode().split()
            csv_rows = [",".join(["image_id", *names])]
            csv_rows += [",".join(row.decode().split()) for row in rows]
            (folder / "list_attr_celeba.csv").write_text("\n".join(csv_rows) + "\n")
            parts = ["image_id,partition"]
            parts += [f"{f},{celeba_partition(i, n_rows)}" for i, f in enumerate(file_names)]
            (folder / "list_eval_partition.csv").write_text("\n".join(parts) + "\n")
        else:
            (folder / "list_attr_celeba.txt").write_bytes(b"\r\n".join(lines[: 2 + n_rows]) + b"\r\n")
            parts = [f"{f} {celeba_partition(i, n_rows)}" for i, f in enumerate(file_names)]
            (folder / "list_eval_partition.txt").write_bytes(("\r\n".join(parts) + "\r\n").encode())
        jpeg = solid_jpeg((90, 160, 30), size=(218, 178))
        for file_name in file_names:
            if file_name not in missing:
                (images / file_name).write_bytes(jpeg)
        return folder.parent

    return make
