"""The protocol runner end to end: results layout, resume equality, divergence handling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import ceco_fair.training.state as state_module
from ceco_fair.data import PALETTE
from ceco_fair.metrics.specs import METRIC_SPECS
from ceco_fair.results.layout import RESULTS_COLUMNS
from ceco_fair.run import main
from ceco_fair.training.methods import Contrastive

BIAS_METRICS = {
    "accuracy",
    "unbiased_accuracy",
    "bias_aligned_accuracy",
    "bias_conflicting_accuracy",
}
DIAGNOSTICS = {name for name, spec in METRIC_SPECS.items() if spec.kind == "representation"}
RUN_METRICS = BIAS_METRICS | DIAGNOSTICS
"""What a BiasedMNIST run writes: the bias metrics and every representation diagnostic."""


def test_tiny_protocol_writes_the_results_layout(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert main([str(write_protocol()), "--output", str(output), "--quiet"]) == 0
    every = pd.read_csv(output / "results.csv")
    assert list(every.columns) == list(RESULTS_COLUMNS)
    # ce trains a head: linear, balanced and head read-outs; contex: linear and balanced
    readouts = every.groupby("method")["readout"].agg(lambda r: sorted(set(r))).to_dict()
    assert readouts == {"ce": ["balanced", "head", "linear"], "contex": ["balanced", "linear"]}
    assert set(every.loc[every["readout"] != "linear", "metric"]) == BIAS_METRICS
    table = every[every["readout"] == "linear"]
    assert list(table.columns)[:5] == ["run_id", "method", "loss", "dataset", "metric_kind"]
    assert (table["metric_kind"] == "bias").all() and set(table["loss"]) == {"ce", "contex"}
    assert all(name in METRIC_SPECS for name in table["metric"])
    assert set(table["method"]) == {"ce", "contex"}
    assert set(table["metric"]) == RUN_METRICS
    assert len(table) == 2 * len(RUN_METRICS)
    assert table.loc[table["metric"].isin(BIAS_METRICS), "value"].between(0, 1).all()
    assert (table["rho"] == 0.99).all() and (table["dataset"] == "biased_mnist").all()
    runs = json.loads((output / "results.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["complete", "complete"]
    for run_id in table["run_id"].unique():
        run_dir = output / "runs" / run_id
        history = pd.read_csv(run_dir / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        assert {"loss", "lr", "seconds", "images_per_s"} <= set(history.columns)
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "complete" and record["metric_kind"] == "bias"
        assert record["target_name"] == "digit" and record["group_names"][0] == "red"
        assert [tuple(map(int, c[4:-1].split(","))) for c in record["group_colours"]] == list(PALETTE)
        matrix = pd.read_csv(run_dir / "bias_matrix.csv", index_col=0)
        assert matrix.shape == (10, 10)
        assert (run_dir / "checkpoint.pt").exists() and (run_dir / "projection.csv").exists()
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["packages"]["torch"] is not None and manifest["device"].startswith("cpu")
    assert manifest["finished"] is not None
    assert (output / "protocol.yaml").exists()


class Interrupt(Exception):
    """Stands for a killed process."""


def test_resume_ends_with_exactly_the_uninterrupted_metrics(
    write_protocol: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protocol = write_protocol(methods=[{"name": "supcon"}], train={"epochs": 3})
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert main([str(protocol), "--output", str(whole), "--quiet"]) == 0

    real_save = state_module.save_checkpoint
    saves: list[int] = []

    def save_then_die(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        saves.append(state["epoch"])
        if state["epoch"] == 1:
            raise Interrupt

    monkeypatch.setattr(state_module, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupt):
        main([str(protocol), "--output", str(resumed), "--quiet"])
    monkeypatch.setattr(state_module, "save_checkpoint", real_save)
    assert not (resumed / "runs" / "supcon-rho0.99-seed0" / "metrics.json").exists()
    assert main([str(protocol), "--output", str(resumed), "--quiet", "--resume"]) == 0

    run = "runs/supcon-rho0.99-seed0"
    assert json.loads((whole / run / "metrics.json").read_text()) == json.loads(
        (resumed / run / "metrics.json").read_text()
    )
    loss_whole = pd.read_csv(whole / run / "history.csv")["loss"].tolist()
    loss_resumed = pd.read_csv(resumed / run / "history.csv")["loss"].tolist()
    assert loss_whole == loss_resumed


def test_resume_refuses_a_changed_protocol(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    assert main([str(write_protocol(methods=[{"name": "ce"}])), "--output", str(output), "--quiet"]) == 0
    changed = write_protocol(methods=[{"name": "ce"}], train={"epochs": 3})
    assert main([str(changed), "--output", str(output), "--quiet", "--resume"]) == 2
    assert "train" in capsys.readouterr().err


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    write_protocol: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss = Contrastive.loss
    calls = {"n": 0}

    def loss_that_explodes(self: Contrastive, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1
        value = real_loss(self, *args, **kwargs)
        return value * float("nan") if calls["n"] > 3 else value

    monkeypatch.setattr(Contrastive, "loss", loss_that_explodes)
    output = tmp_path / "out"
    status = main([str(write_protocol(methods=[{"name": "supcon"}])), "--output", str(output), "--quiet"])
    assert status == 1
    checkpoint = torch.load(output / "runs" / "supcon-rho0.99-seed0" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values() if t.is_floating_point())
    runs = json.loads((output / "results.json").read_text())["runs"]
    assert runs[0]["status"] == "failed" and "nan" in runs[0]["error"]


def test_user_encoder_factory_runs_through_the_protocol(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    protocol = write_protocol(
        methods=[{"name": "contex"}], encoder={"arch": "tiny_encoder:make", "kwargs": {"width": 6}}
    )
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    table = pd.read_csv(output / "results.csv")
    assert set(table["metric"]) == RUN_METRICS and (table["method"] == "contex").all()


def test_resume_refuses_a_checkpoint_of_another_version(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol(methods=[{"name": "ce"}], train={"epochs": 1})
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    checkpoint = output / "runs" / "ce-rho0.99-seed0" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    torch.save({**state, "version": 0}, checkpoint)
    record = output / "runs" / "ce-rho0.99-seed0" / "run.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "status": "running"}))
    assert main([str(protocol), "--output", str(output), "--quiet", "--resume"]) == 2
    error = capsys.readouterr().err
    assert "checkpoint version 0" in error and len(error.strip().splitlines()) == 1
