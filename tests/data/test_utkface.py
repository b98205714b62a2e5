from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ceco_fair.data import UTKFace
from ceco_fair.data.utkface import parse_utkface_name, stratified_assignment
from ceco_fair.errors import CecoFairError, DataError

SPLITS = ("train", "valid", "test")


def reference_code(name: str, attribute: str, race_binary: bool, age_bins: str) -> int | None:
    """Code an attribute straight from a file name; None when the age binning drops it."""
    age, gender, race = (int(part.strip().split(".")[0].removesuffix("jpg")) for part in name.split("_")[:3])
    if attribute == "gender":
        return gender
    if attribute == "race":
        return (0 if race == 0 else 1) if race_binary else race
    if age_bins == "biascon":
        return 0 if age >= 20 else 1 if age <= 10 else None
    return 0 if age < 35 else 1


def build_all(root: Path, **kwargs: Any) -> dict[str, UTKFace]:
    return {split: UTKFace(root, split, image_size=16, **kwargs) for split in SPLITS}


# ---------------------------------------------------------------------------------------------
# names


def test_parse_regular_and_tolerated_names(utk: Any) -> None:
    record = parse_utkface_name("25_1_3_20170104231305129.jpg.chip.jpg")
    assert (record.age, record.gender, record.race, record.irregular) == (25, 1, 3, None)
    plain = parse_utkface_name("1_0_4_20161221193016140.jpg")
    assert (plain.age, plain.gender, plain.race, plain.irregular) == (1, 0, 4, None)
    space = parse_utkface_name(utk.space)
    assert (space.age, space.gender, space.race) == (24, 0, 1)
    assert space.irregular == "whitespace before the extension"
    no_dot = parse_utkface_name(utk.no_dot)
    assert (no_dot.age, no_dot.gender, no_dot.race) == (55, 0, 0)
    assert no_dot.irregular == "no dot before 'jpg'"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("39_1_20170116174525125.jpg.chip.jpg", "race field is missing"),
        ("61_1_20170109142408075.jpg.chip.jpg", "race field is missing"),
        ("25_2_0_20170104231305129.jpg.chip.jpg", "gender 2 is not 0 or 1"),
        ("25_1_5_20170104231305129.jpg.chip.jpg", "race 5 is not in 0..4"),
        ("125_1_0_20170104231305129.jpg.chip.jpg", "age 125 is above 120"),
        ("25_1_0_20170104231305129.png", "unexpected extension"),
        ("README.txt", "does not follow"),
    ],
)
def test_unparsable_names(name: str, fragment: str) -> None:
    with pytest.raises(DataError) as info:
        parse_utkface_name(name)
    assert fragment in str(info.value) and name in str(info.value)


# ---------------------------------------------------------------------------------------------
# folder, attributes, splits


def test_skipped_irregular_and_both_root_conventions(make_utkface: Callable[..., Path], utk: Any) -> None:
    root = make_utkface()
    dataset = UTKFace(root, "train", image_size=16)
    skipped = dict(dataset.skipped)
    for name in utk.no_race:
        assert "race field is missing" in skipped[name]
    assert utk.not_image in skipped
    assert utk.corrupt not in skipped  # only found out by decoding
    assert dict(dataset.irregular) == {
        utk.space: "whitespace before the extension",
        utk.no_dot: "no dot before 'jpg'",
    }
    inner = UTKFace(root / "UTKFace", "train", image_size=16)
    assert inner.files == dataset.files
    assert torch.equal(inner.targets, dataset.targets)
    assert UTKFace.check_root(root) == root / "UTKFace"
    assert UTKFace.check_root(root / "UTKFace") == root / "UTKFace"


@pytest.mark.parametrize(
    ("target", "sensitive", "race_binary", "age_bins"),
    [
        ("gender", "race", True, "biascon"),
        ("gender", "race", False, "biascon"),
        ("gender", "age", True, "biascon"),
        ("gender", "age", True, "fscl"),
        ("age", "race", True, "fscl"),
        ("race", "gender", False, "fscl"),
    ],
)
def test_codes_and_splits_match_reference(
    make_utkface: Callable[..., Path],
    target: str,
    sensitive: str,
    race_binary: bool,
    age_bins: str,
) -> None:
    root = make_utkface()
    kwargs = {
        "target": target,
        "sensitive": sensitive,
        "race_binary": race_binary,
        "age_bins": age_bins,
        "seed": 7,
    }
    datasets = build_all(root, **kwargs)
    names = sorted(p.name for p in (root / "UTKFace").iterdir())
    usable: dict[str, tuple[int, int]] = {}
    for name in names:
        try:
            parse_utkface_name(name)
        except DataError:
            continue
        t = reference_code(name, target, race_binary, age_bins)
        s = reference_code(name, sensitive, race_binary, age_bins)
        if t is not None and s is not None:
            usable[name] = (t, s)
    seen: dict[str, str] = {}
    for split, dataset in datasets.items():
        for index, path in enumerate(dataset.files):
            assert path.name not in seen
            seen[path.name] = split
            assert (int(dataset.targets[index]), int(dataset.sensitive[index])) == usable[path.name]
    assert set(seen) == set(usable)
    # Per (target, sensitive) cell: round-half-up 80 % train, up to 90 % train + valid.
    cells = Counter(usable.values())
    for cell, n in cells.items():
        in_cell = [name for name, codes in usable.items() if codes == cell]
        per_split = Counter(seen[name] for name in in_cell)
        n_train = math.floor(n * 0.8 + 0.5)
        n_train_valid = math.floor(n * 0.9 + 0.5)
        assert per_split["train"] == n_train
        assert per_split["valid"] == n_train_valid - n_train
        assert per_split["test"] == n - n_train_valid
    dataset = datasets["train"]
    n_classes = 5 if (target == "race" and not race_binary) else 2
    n_groups = 5 if (sensitive == "race" and not race_binary) else 2
    assert (dataset.n_classes, dataset.n_groups) == (n_classes, n_groups)
    assert len(dataset.class_names) == n_classes and len(dataset.group_names) == n_groups


def test_group_names_and_age_coding(make_utkface: Callable[..., Path]) -> None:
    root = make_utkface()
    biascon = UTKFace(root, "train", "gender", "age", image_size=16)
    assert biascon.class_names == ["male", "female"]
    assert biascon.group_names == ["age>=20", "age<=10"]
    ages = biascon.attributes["age"].to_numpy()
    assert not ((ages > 10) & (ages < 20)).any()
    assert np.array_equal(biascon.sensitive.numpy(), (ages <= 10).astype(np.int64))
    fscl = UTKFace(root, "train", "gender", "age", age_bins="fscl", image_size=16)
    assert fscl.group_names == ["age<35", "age>=35"]
    race = UTKFace(root, "train", image_size=16)
    assert race.group_names == ["White", "non-White"]
    five = UTKFace(root, "train", race_binary=False, image_size=16)
    assert five.group_names == ["White", "Black", "Asian", "Indian", "Others"]


def test_split_is_seeded(make_utkface: Callable[..., Path]) -> None:
    root = make_utkface()
    first = UTKFace(root, "test", seed=1, image_size=16)
    again = UTKFace(root, "test", seed=1, image_size=16)
    other = UTKFace(root, "test", seed=2, image_size=16)
    assert first.files == again.files
    assert first.files != other.files


def test_stratified_assignment_small_cells() -> None:
    cells = np.array([0] * 10 + [1] * 3 + [2])
    codes = stratified_assignment(cells, np.random.default_rng(0))
    assert Counter(codes[:10].tolist()) == {0: 8, 1: 1, 2: 1}
    assert Counter(codes[10:13].tolist()) == {0: 2, 1: 1}
    assert codes[13] == 0


# ---------------------------------------------------------------------------------------------
# bias_rate


@pytest.mark.parametrize("bias_rate", [0.9, 0.95, 0.8, 1.0])
def test_bias_rate_counts(make_utkface: Callable[..., Path], bias_rate: float) -> None:
    root = make_utkface(n=400)
    full = UTKFace(root, "train", seed=3, image_size=16)
    reduced = UTKFace(root, "train", seed=3, image_size=16, bias_rate=bias_rate)
    assert set(reduced.files) <= set(full.files)
    t_full, s_full = full.targets.numpy(), full.sensitive.numpy()
    t_red, s_red = reduced.targets.numpy(), reduced.sensitive.numpy()
    for group in (0, 1):
        n_major = int(((t_full == group) & (s_full == group)).sum())
        n_conflicting = int(((t_full == 1 - group) & (s_full == group)).sum())
        assert int(((t_red == group) & (s_red == group)).sum()) == n_major
        wanted = math.floor(n_major * round(1 - bias_rate, 12))
        assert int(((t_red == 1 - group) & (s_red == group)).sum()) == min(wanted, n_conflicting)
    for split in ("valid", "test"):
        assert (
            UTKFace(root, split, seed=3, image_size=16, bias_rate=bias_rate).files
            == UTKFace(root, split, seed=3, image_size=16).files
        )


def test_bias_rate_needs_binary_attributes(make_utkface: Callable[..., Path]) -> None:
    with pytest.raises(CecoFairError, match="bias_rate needs a binary target"):
        UTKFace(make_utkface(), "train", race_binary=False, bias_rate=0.9, image_size=16)


# ---------------------------------------------------------------------------------------------
# images


def test_items_decode_and_resize(make_utkface: Callable[..., Path], utk: Any) -> None:
    dataset = UTKFace(make_utkface(), "valid", image_size=16)
    for index in range(min(len(dataset), 6)):
        if dataset.files[index].name == utk.corrupt:
            continue
        image, target, sensitive = dataset[index]
        assert image.shape == (3, 16, 16) and image.dtype == torch.uint8
        assert target == int(dataset.targets[index]) and sensitive == int(dataset.sensitive[index])
        gender = int(dataset.attributes["gender"].iloc[index])
        mean = image.float().mean(dim=(1, 2))
        expected = torch.tensor(utk.gender_colours[gender], dtype=torch.float32)
        assert torch.allclose(mean, expected, atol=6)


def test_corrupt_image_is_dropped_by_preflight(
    make_utkface: Callable[..., Path], utk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_utkface()
    holder = next(
        split for split in SPLITS if utk.corrupt in {p.name for p in UTKFace(root, split, image_size=16).files}
    )
    lazy = UTKFace(root, holder, image_size=16)
    position = [p.name for p in lazy.files].index(utk.corrupt)
    with pytest.raises(DataError) as info:
        lazy[position]
    assert utk.corrupt in str(info.value) and "preflight=True" in str(info.value)
    with caplog.at_level(logging.WARNING):
        checked = UTKFace(root, holder, image_size=16, preflight=True)
    assert len(checked) == len(lazy) - 1
    assert utk.corrupt not in {p.name for p in checked.files}
    assert utk.corrupt in dict(checked.skipped)
    assert utk.corrupt in caplog.text
    assert lazy.verify() == [(utk.corrupt, dict(checked.skipped)[utk.corrupt])]
    assert len(lazy) == len(checked) and lazy.attributes.shape[0] == len(lazy)


# ---------------------------------------------------------------------------------------------
# split file


def test_split_file(make_utkface: Callable[..., Path], tmp_path: Path, utk: Any) -> None:
    root = make_utkface()
    names = [n for n in sorted(p.name for p in (root / "UTKFace").iterdir()) if n[0].isdigit()]
    chosen = {names[0]: "test", names[1]: "train", names[2]: "test", utk.space: "test"}
    split_file = tmp_path / "split.csv"
    lines = ["filename,split", *(f"UTKFace/{n},{s}" for n, s in chosen.items())]
    split_file.write_text("\n".join([*lines, "1_0_0_20990101000000000.jpg.chip.jpg,train"]) + "\n")
    test = UTKFace(root, "test", image_size=16, split_file=split_file)
    expected = sorted(n for n, s in chosen.items() if s == "test" and n[:2] not in ("39", "61"))
    assert sorted(p.name for p in test.files) == expected
    with pytest.raises(DataError, match="is empty"):
        UTKFace(root, "valid", image_size=16, split_file=split_file)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("name,part\na,train\n", "expected filename,split"),
        ("filename,split\n25_1_3_20170104231305129.jpg.chip.jpg,validation\n", "row 2"),
        ("filename,split\nx.jpg,train\nx.jpg,test\n", "more than once"),
        ("filename,split\n1_0_0_20990101000000000.jpg.chip.jpg,train\n", "names none of"),
    ],
)
def test_bad_split_files(make_utkface: Callable[..., Path], tmp_path: Path, content: str, fragment: str) -> None:
    split_file = tmp_path / "bad.csv"
    split_file.write_text(content)
    with pytest.raises(DataError) as info:
        UTKFace(make_utkface(), "train", image_size=16, split_file=split_file)
    assert fragment in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        UTKFace(tmp_path / "utk", "train", split_file=tmp_path / "none.csv")


# ---------------------------------------------------------------------------------------------
# errors


def test_check_root_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        UTKFace.check_root(tmp_path / "missing")
    assert "does not exist" in str(info.value) and UTKFace.expected_layout() in str(info.value)
    empty = tmp_path / "empty" / "UTKFace"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no image with a parsable name"):
        UTKFace.check_root(empty.parent)
    with pytest.raises(DataError, match="no image with a parsable name"):
        UTKFace(empty.parent)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"target": "sex"}, "target must be one of ['gender', 'race', 'age'], got 'sex'"),
        ({"sensitive": "gender"}, "target and sensitive must differ"),
        ({"age_bins": "decades", "sensitive": "age"}, "age_bins must be one of"),
        ({"split": "validation"}, "split must be one of"),
        ({"bias_rate": 0.0}, "bias_rate must be None or a number in (0, 1]"),
        ({"image_size": 0}, "image_size must be a positive integer"),
        ({"seed": -2}, "seed must be a non-negative integer"),
    ],
)
def test_argument_errors(make_utkface: Callable[..., Path], kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CecoFairError) as info:
        UTKFace(make_utkface(), **kwargs)
    assert fragment in str(info.value)
    assert not isinstance(info.value, DataError)
