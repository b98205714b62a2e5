"""Encoders out (encoder.pt, load_encoder) and in (encoder.weights, the frozen method)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from test_protocol import run_cli

from ceco_fair import load_encoder
from ceco_fair.errors import DataError
from ceco_fair.models.encoders import SmallConvNet
from ceco_fair.models.files import load_weights
from ceco_fair.runner.protocol import load_protocol

RUN = "runs/ce-rho0.99-seed0"


def test_encoder_pt_round_trips_and_frozen_audit_matches_the_trained_run(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trained = tmp_path / "trained"
    status, err = run_cli(write_protocol(methods=["ce"]), trained, capsys)
    assert status == 0, err
    saved = torch.load(trained / RUN / "encoder.pt", weights_only=True)
    encoder = load_encoder(trained / RUN)
    assert isinstance(encoder, SmallConvNet) and not encoder.training
    assert saved.keys() == encoder.state_dict().keys()
    assert all(torch.equal(saved[name], value) for name, value in encoder.state_dict().items())

    weights = tmp_path / "weights" / "encoder.pt"  # relative to the protocol file below
    weights.parent.mkdir()
    weights.write_bytes((trained / RUN / "encoder.pt").read_bytes())
    frozen = tmp_path / "frozen"
    protocol = write_protocol(methods=["frozen"], encoder={"weights": "weights/encoder.pt"})
    status, err = run_cli(protocol, frozen, capsys)
    assert status == 0, err
    metrics = json.loads((trained / RUN / "metrics.json").read_text())
    frozen_metrics = json.loads((frozen / "runs/frozen-rho0.99-seed0/metrics.json").read_text())
    assert frozen_metrics == metrics and {"accuracy", "bias_sensitivity", "instance_retrieval_within_cell"} <= set(
        metrics
    )
    assert not (frozen / "runs/frozen-rho0.99-seed0/checkpoint.pt").exists()  # nothing was trained


def test_weights_that_do_not_fit_name_the_first_keys(tmp_path: Path) -> None:
    encoder = SmallConvNet(feature_dim=8)
    state = encoder.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["body.0.weight"]
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(DataError, match=r"missing body\.0\.weight; unexpected extra\.weight"):
        load_weights(encoder, tmp_path / "w.pt")
    torch.save(SmallConvNet(feature_dim=16).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(DataError, match=r"body\.9\.weight has shape \(16, 64, 3, 3\)"):
        load_weights(encoder, tmp_path / "wide.pt")
    (tmp_path / "text.pt").write_text("not weights")
    with pytest.raises(DataError, match=r"cannot read .*text\.pt as PyTorch weights"):
        load_weights(encoder, tmp_path / "text.pt")


@pytest.mark.parametrize(
    ("make", "dry_run_status", "expected"),
    [
        (lambda folder: None, 2, "encoder.weights: no file at"),
        (lambda folder: torch.save({"other.weight": torch.zeros(2)}, folder / "w.pt"), 0, "unexpected other.weight"),
    ],
    ids=["missing file", "keys that do not fit"],
)
def test_bad_weights_exit_2_in_one_line_before_anything_is_written(
    make: Callable[[Path], None],
    dry_run_status: int,
    expected: str,
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make(tmp_path)
    protocol = write_protocol(methods=["frozen"], encoder={"weights": str(tmp_path / "w.pt")})
    assert run_cli(protocol, tmp_path / "out", capsys, "--dry-run")[0] == dry_run_status
    status, err = run_cli(protocol, tmp_path / "out", capsys)
    assert status == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error:") and expected in line, line
    assert not (tmp_path / "out").exists()


def test_a_torchvision_model_validates_as_an_encoder(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol(methods=["frozen"], encoder={"arch": "torchvision.models:resnet18"})
    status, err = run_cli(protocol, tmp_path / "out", capsys, "--dry-run")
    assert status == 0, err


def test_shipped_audit_example_runs_its_check_once_the_weights_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parents[1] / "protocols" / "audit_encoder.yaml"
    status, err = run_cli(example, tmp_path / "out", capsys, "--dry-run")
    assert status == 2 and "encoder.weights: no file at" in err and "TIMESTAMP" in err
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))
    torch.save(SmallConvNet(feature_dim=raw["encoder"]["feature_dim"]).state_dict(), tmp_path / "encoder.pt")
    raw["encoder"]["weights"] = "encoder.pt"
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    status, err = run_cli(tmp_path / "audit.yaml", tmp_path / "out", capsys, "--dry-run")
    assert status == 0, err
    assert load_protocol(tmp_path / "audit.yaml").encoder.weights == str(tmp_path / "encoder.pt")
