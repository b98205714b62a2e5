"""audit() on the face datasets records what their target and sensitive attribute are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from ceco_fair import audit
from ceco_fair.data import CelebA, UTKFace
from ceco_fair.data.base import FairnessDataset
from ceco_fair.evaluation.probe import ProbeConfig


def _pooled_colour() -> nn.Module:
    """Features ``[B, 3]``: the mean colour of each image."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _audit(train: FairnessDataset, test: FairnessDataset) -> dict[str, object]:
    torch.manual_seed(0)
    result = audit(
        _pooled_colour(),
        train,  # type: ignore[arg-type]
        test,  # type: ignore[arg-type]
        device="cpu",
        n_boot=0,
        probe_config=ProbeConfig(epochs=1),
        progress=False,
    )
    assert result.kind == "group"
    return result.info


def test_audit_records_utkface_names(make_utkface: Callable[..., Path]) -> None:
    root = make_utkface(240)
    train, test = (
        UTKFace(root, split, image_size=16, target="gender", sensitive="race", preflight=True)
        for split in ("train", "test")
    )
    assert isinstance(test, FairnessDataset)
    info = _audit(train, test)
    assert info["target"] == "gender" and info["sensitive"] == "race"
    assert info["metric_kind"] == "group" and info["group_names"] == test.group_names


@pytest.mark.parametrize(("sensitive", "named"), [("Male", "Male"), (["Male", "Young"], "Male+Young")])
def test_audit_records_celeba_names(make_celeba: Callable[..., Path], sensitive: str | list[str], named: str) -> None:
    root = make_celeba(200)
    train, test = (
        CelebA(root, split, target="Smiling", sensitive=sensitive, image_size=16) for split in ("train", "test")
    )
    info = _audit(train, test)
    assert info["target"] == "Smiling" and info["sensitive"] == named
    assert info["class_names"] == ["not Smiling", "Smiling"]
