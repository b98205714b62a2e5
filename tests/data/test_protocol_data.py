"""The runner on real dataset layouts: preflight errors before training, a tiny UTKFace run end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ceco_fair.metrics import metric_names
from ceco_fair.run import main

GROUP_METRICS = set(metric_names())


def protocol_file(tmp_path: Path, data: dict[str, Any], **extra: Any) -> Path:
    protocol = {
        "name": "faces",
        "device": "cpu",
        "data": data,
        "encoder": {"arch": "small_conv", "feature_dim": 8, "projection_dim": 8},
        "methods": [{"name": "ce"}, {"name": "fscl"}],
        "train": {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 2},
        "probe": {"epochs": 2},
        "eval": {"n_boot": 50, "projection_points": 50},
        "report": False,
        **extra,
    }
    path = tmp_path / "faces.yaml"
    path.write_text(yaml.safe_dump(protocol), encoding="utf-8")
    return path


def test_tiny_utkface_protocol_end_to_end(make_utkface: Callable[..., Path], tmp_path: Path) -> None:
    root = make_utkface(240)
    protocol = protocol_file(tmp_path, {"dataset": "utkface", "root": str(root), "image_size": 24, "preflight": True})
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    table = pd.read_csv(output / "results.csv")
    assert set(table["metric"]) >= GROUP_METRICS
    assert set(table["method"]) == {"ce", "fscl"}
    assert (table["target"] == "gender").all() and (table["sensitive"] == "race").all()
    groups = pd.read_csv(output / "runs" / "fscl-gender-vs-race-seed0" / "group_table.csv")
    assert list(groups["group_name"]) == ["White", "non-White"]


@pytest.mark.parametrize("problem", ["no root", "no partition file", "unknown attribute"])
def test_missing_or_incomplete_dataset_folder_exits_2_before_training(
    problem: str, make_celeba: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data: dict[str, Any] = {"dataset": "celeba", "root": str(tmp_path / "nowhere")}
    expected = ["nowhere", "list_attr_celeba.txt"]
    if problem != "no root":
        root = make_celeba(40)
        data["root"] = str(root)
        if problem == "no partition file":
            (root / "celeba" / "list_eval_partition.txt").unlink()
            expected = ["list_eval_partition"]
        else:
            data["target"] = "Atractive"
            expected = ["Atractive", "Attractive"]
    output = tmp_path / "out"
    status = main([str(protocol_file(tmp_path, data)), "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert not output.exists()
