from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from ceco_fair.data import CelebA
from ceco_fair.data.celeba import read_attributes, read_partition
from ceco_fair.errors import CecoFairError, DataError

N_ROWS = 200


def simple_parse(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """Attribute names and 0/1 rows by file name, by splitting lines."""
    lines = path.read_text().splitlines()
    names = lines[1].split()
    rows = {}
    for line in lines[2:]:
        fields = line.split()
        rows[fields[0]] = [1 if v == "1" else 0 for v in fields[1:]]
    return names, rows


def partition_of(index: int) -> int:
    return 0 if index < 160 else 1 if index < 180 else 2


def test_full_real_sample_parses(celeba_sample: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        table = read_attributes(celeba_sample)
    assert "202599" in caplog.text and "1000" in caplog.text
    assert table.shape == (1000, 40)
    assert list(table.columns).index("Male") == 20
    for name, index in {
        "Attractive": 2,
        "Bags_Under_Eyes": 3,
        "Big_Nose": 7,
        "Blond_Hair": 9,
        "Heavy_Makeup": 18,
        "Young": 39,
    }.items():
        assert list(table.columns).index(name) == index
    assert table.index[0] == "000001.jpg" and table.index[-1] == "001000.jpg"
    assert table.loc["000001.jpg", ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive"]].tolist() == [
        0,
        1,
        1,
    ]
    assert table.loc["000001.jpg", "Male"] == 0 and table.loc["000001.jpg", "Young"] == 1
    assert table.loc["000003.jpg", "Male"] == 1
    names, rows = simple_parse(celeba_sample)
    assert names == list(table.columns)
    expected = np.array([rows[f"{i:06d}.jpg"] for i in range(1, 1001)], dtype=np.int8)
    assert np.array_equal(table.to_numpy(), expected)
    assert table.dtypes.unique().tolist() == [np.int8]


def test_fixture_matches_independent_parse(make_celeba: Callable[..., Path]) -> None:
    root = make_celeba()
    attribute_file = root / "celeba" / "list_attr_celeba.txt"
    assert attribute_file.read_bytes().count(b"\r\n") == N_ROWS + 2
    assert attribute_file.read_bytes().startswith(b"202599\r\n")
    names, rows = simple_parse(attribute_file)
    files = sorted(rows)
    for split, code in (("train", 0), ("valid", 1), ("test", 2)):
        dataset = CelebA(root, split, image_size=32)
        expected_files = [f for i, f in enumerate(files) if partition_of(i) == code]
        assert [p.name for p in dataset.files] == expected_files
        attractive, male = names.index("Attractive"), names.index("Male")
        assert dataset.targets.tolist() == [rows[f][attractive] for f in expected_files]
        assert dataset.sensitive.tolist() == [rows[f][male] for f in expected_files]
        assert dataset.sensitive is dataset.bias
        assert dataset.attributes["image_id"].tolist() == expected_files
    train = CelebA(root, "train", image_size=32)
    assert len(train) == 160 and train.targets.dtype == torch.int64
    assert (train.n_classes, train.n_groups) == (2, 2)
    assert train.class_names == ["not Attractive", "Attractive"]
    assert train.group_names == ["not Male", "Male"]


def test_list_sensitive_gives_binary_coded_groups(make_celeba: Callable[..., Path]) -> None:
    root = make_celeba()
    names, rows = simple_parse(root / "celeba" / "list_attr_celeba.txt")
    dataset = CelebA(root, "train", target="Heavy_Makeup", sensitive=["Male", "Young"])
    male, young = names.index("Male"), names.index("Young")
    expected = [rows[p.name][male] + 2 * rows[p.name][young] for p in dataset.files]
    assert dataset.sensitive.tolist() == expected
    assert dataset.n_groups == 4
    assert dataset.group_names == [
        "not Male, not Young",
        "Male, not Young",
        "not Male, Young",
        "Male, Young",
    ]
    assert set(expected) == {0, 1, 2, 3}


def test_csv_variant_matches_text_variant(make_celeba: Callable[..., Path]) -> None:
    text = CelebA(make_celeba(name="txt"), "test", target="Blond_Hair", image_size=32)
    csv = CelebA(make_celeba(name="csv", csv=True), "test", target="Blond_Hair", image_size=32)
    assert [p.name for p in csv.files] == [p.name for p in text.files]
    assert torch.equal(csv.targets, text.targets) and torch.equal(csv.sensitive, text.sensitive)
    assert csv.layout.attribute_file.suffix == ".csv"


def test_both_root_conventions(make_celeba: Callable[..., Path]) -> None:
    root = make_celeba()
    outer = CelebA(root, "valid", image_size=32)
    inner = CelebA(root / "celeba", "valid", image_size=32)
    assert outer.files == inner.files
    assert CelebA.check_root(root).folder == root / "celeba"


def test_items_decode_resize_and_crop(make_celeba: Callable[..., Path]) -> None:
    root = make_celeba()
    dataset = CelebA(root, "test", image_size=24)
    image, target, sensitive = dataset[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.uint8
    assert target == int(dataset.targets[0]) and sensitive == int(dataset.sensitive[0])
    mean = image.float().mean(dim=(1, 2))
    assert torch.allclose(mean, torch.tensor([90.0, 160.0, 30.0]), atol=6)
    cropped = CelebA(root, "test", image_size=24, crop=178)[0][0]
    assert cropped.shape == (3, 24, 24)
    with pytest.raises(DataError, match="larger than image"):
        CelebA(root, "test", image_size=24, crop=(300, 178))[0]


def test_partial_copy_skips_missing_images(make_celeba: Callable[..., Path], caplog: pytest.LogCaptureFixture) -> None:
    missing = ["000003.jpg", "000170.jpg", "000199.jpg"]
    root = make_celeba(missing=missing)
    report = CelebA.check_root(root)
    assert (report.n_listed, report.n_missing) == (N_ROWS, 3)
    assert list(report.missing_examples) == missing
    with caplog.at_level(logging.WARNING):
        train = CelebA(root, "train")
    assert train.skipped == [("000003.jpg", "image file missing")]
    assert len(train) == 159 and "000003.jpg" in caplog.text
    assert len(CelebA(root, "test").skipped) == 1


def test_no_image_present_is_an_error(make_celeba: Callable[..., Path]) -> None:
    names = [f"{i:06d}.jpg" for i in range(1, N_ROWS + 1)]
    root = make_celeba(missing=names)
    with pytest.raises(DataError, match="none of the 200 images"):
        CelebA.check_root(root)
    with pytest.raises(DataError, match="has no image present"):
        CelebA(root, "train")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"target": "Atractive"}, "did you mean 'Attractive'"),
        ({"target": "male", "sensitive": "Young"}, "'Male'"),
        ({"sensitive": ["Male", "Yung"]}, "did you mean 'Young'"),
        ({"sensitive": []}, "non-empty list"),
        ({"sensitive": ["Male", "Male"]}, "distinct"),
        ({"target": "Male"}, "target 'Male' is also a sensitive attribute"),
        ({"split": "val"}, "split must be one of"),
        ({"crop": -3}, "crop must be None"),
    ],
)
def test_argument_errors(make_celeba: Callable[..., Path], kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(CecoFairError) as info:
        CelebA(make_celeba(), **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_check_root_validates_attributes_and_layout(make_celeba: Callable[..., Path], tmp_path: Path) -> None:
    root = make_celeba()
    with pytest.raises(CecoFairError, match="did you mean 'Big_Nose'"):
        CelebA.check_root(root, target="Big_nose", sensitive="Male")
    with pytest.raises(DataError) as info:
        CelebA.check_root(tmp_path / "missing")
    assert CelebA.expected_layout() in str(info.value)
    (root / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match=r"lacks list_eval_partition\.txt or list_eval_partition\.csv"):
        CelebA.check_root(root)


def test_malformed_tables(tmp_path: Path) -> None:
    bad_values = tmp_path / "list_attr_celeba.txt"
    bad_values.write_text("2\nA B\nx.jpg 1 -1\ny.jpg 0 1\n")
    with pytest.raises(DataError, match="column 'A' holds values other than -1 and 1"):
        read_attributes(bad_values)
    bad_count = tmp_path / "count" / "list_attr_celeba.txt"
    bad_count.parent.mkdir()
    bad_count.write_text("many\nA B\nx.jpg 1 -1\n")
    with pytest.raises(DataError, match="line 1 should be the image count"):
        read_attributes(bad_count)
    duplicate = tmp_path / "dup" / "list_attr_celeba.txt"
    duplicate.parent.mkdir()
    duplicate.write_text("2\nA B\nx.jpg 1 -1\nx.jpg -1 -1\n")
    with pytest.raises(DataError, match="more than once"):
        read_attributes(duplicate)
    short = tmp_path / "short" / "list_attr_celeba.txt"
    short.parent.mkdir()
    short.write_text("2\nA B\nx.jpg 1\ny.jpg -1 1\n")
    with pytest.raises(DataError, match=r"row 'x\.jpg' has fewer values than the 2 attribute"):
        read_attributes(short)
    long = tmp_path / "long" / "list_attr_celeba.txt"
    long.parent.mkdir()
    long.write_text("2\nA B\nx.jpg 1 -1 1\ny.jpg -1 1\n")
    with pytest.raises(DataError, match="cannot parse"):
        read_attributes(long)
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("x.jpg 0\ny.jpg 3\n")
    with pytest.raises(DataError, match="partition values other than 0, 1, 2"):
        read_partition(partition)
