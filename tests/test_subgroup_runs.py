"""The subgroup baselines and the read-outs through the command line: results, report, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_user_dataset import user_protocol
from tiny_protocol import tiny_protocol_dict

from ceco_fair.report import load_results
from ceco_fair.results.layout import READOUTS_FILE, REPORT_FILE, RESULTS_CSV, run_dir
from ceco_fair.run import main
from ceco_fair.summary import main as summary_main

SUBGROUP = [
    {"name": "groupdro", "eta": 0.1},
    {"name": "reweight"},
    {"name": "resample"},
    {"name": "jtt", "stage_one_epochs": 1, "upweight": 3},
    {"name": "lff"},
    {"name": "cnc", "stage_one_epochs": 1},
]


def test_every_subgroup_method_runs_on_a_user_dataset_with_three_readouts(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = user_protocol(
        {"dataset": "user_datasets:ShadedDigits", "rho": [0.9]},
        methods=[*SUBGROUP, {"name": "supcon"}],
        train={"epochs": 2, "batch_size": 32, "max_batches_per_epoch": 2},
        eval={"n_boot": 0, "projection_points": 60, "baseline": "reweight"},
    )
    output = tmp_path / "out"
    assert main([str(write_protocol(protocol)), "--output", str(output), "--quiet"]) == 0
    table = pd.read_csv(output / RESULTS_CSV)
    readouts = table.groupby("method")["readout"].agg(lambda r: sorted(set(r))).to_dict()
    for method in SUBGROUP:
        assert readouts[method["name"]] == ["balanced", "head", "linear"]
    assert readouts["supcon"] == ["balanced", "linear"]
    conflicting = table[table["metric"] == "bias_conflicting_accuracy"]
    assert conflicting["value"].between(0, 1).all() and len(conflicting) == len(SUBGROUP) * 3 + 2
    first = run_dir(output, "groupdro-rho0.9-seed0")
    assert (first / READOUTS_FILE).exists()
    comparisons = pd.read_csv(output / "comparisons.csv")
    assert set(comparisons["readout"]) == {"linear", "balanced", "head"}
    assert set(comparisons.loc[comparisons["method"] == "supcon", "readout"]) == {"linear", "balanced"}
    page = (output / REPORT_FILE).read_text(encoding="utf-8")
    assert 'id="readouts"' in page and "the classifier chose the bias" in page
    results = load_results(output)
    assert set(results.readouts["readout"]) == {"linear", "balanced", "head"}
    assert set(results.metrics["method"]) == set(table["method"])
    assert summary_main([str(output), "--metrics", "bias_conflicting_accuracy", "--readout", "head"]) == 0
    shown = capsys.readouterr().out
    assert "| jtt |" in shown and "supcon" not in shown


def test_balanced_readout_fits_on_the_validation_split(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    """The same run with the balanced probe fitted on valid and on train: only the balanced read-out differs."""
    tables = {}
    for split in ("valid", "train"):
        protocol = tiny_protocol_dict(
            methods=[{"name": "ce"}],
            data={"val_fraction": 0.2},
            probe={"balanced_on": split},
            eval={"projection_points": 50},
        )
        output = tmp_path / split
        assert main([str(write_protocol(protocol)), "--output", str(output), "--quiet"]) == 0
        assert split in (output / "protocol.yaml").read_text(encoding="utf-8")
        assert "error" not in (output / "run.log").read_text(encoding="utf-8").lower()
        table = pd.read_csv(output / RESULTS_CSV)
        assert {"linear", "balanced", "head"} == set(table["readout"])
        tables[split] = table.set_index(["readout", "metric"])["value"]
    valid, train = tables["valid"], tables["train"]
    for readout in ("linear", "head"):  # the same encoder, the same probes
        pd.testing.assert_series_equal(valid[readout], train[readout])
    balanced = valid["balanced"].index.intersection(
        [name for name in valid["balanced"].index if "accuracy" in str(name)]
    )
    assert len(balanced) and not valid["balanced"][balanced].equals(train["balanced"][balanced]), (
        "the balanced probe fitted on valid scores exactly as the one fitted on train"
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"methods": [{"name": "groupdro", "eta": 0}]}, "methods[0].eta: expected a positive step size, got 0"),
        ({"methods": [{"name": "jtt", "upweight": 0}]}, "methods[0].upweight: expected an integer >= 1, got 0"),
        (
            {"methods": [{"name": "jtt", "stage_one_epochs": 2}]},
            "methods[0].stage_one_epochs: expected fewer than train.epochs (2), got 2",
        ),
        ({"methods": [{"name": "lff", "gamma": 1}]}, "methods[0].gamma: unknown option of lff; valid options: q, ema"),
        (
            {"methods": [{"name": "ce"}], "probe": {"balanced_on": "valid"}},
            "probe.balanced_on: valid needs a validation split",
        ),
        ({"probe": {"balanced_on": "test"}}, "probe.balanced_on: expected 'train' or 'valid', got 'test'"),
        (
            {"data": {"dataset": "user_datasets:OneGroup"}, "methods": [{"name": "reweight"}]},
            "methods[0] (reweight-seed0): method reweight trains with the sensitive attribute",
        ),
    ],
)
def test_bad_input_is_one_line_with_exit_status_2_and_nothing_written(
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    overrides: dict[str, Any],
    expected: str,
) -> None:
    protocol = tiny_protocol_dict(**overrides)
    if "data" in overrides:
        protocol["data"] = overrides["data"]
    output = tmp_path / "out"
    assert main([str(write_protocol(protocol)), "--output", str(output), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and expected in error, error
    assert not output.exists()


class Interrupt(Exception):
    """Stands for a process killed right after a checkpoint."""


def test_resumed_lff_run_writes_exactly_the_uninterrupted_readouts(
    write_protocol: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ceco_fair.training.state as state_module

    protocol = write_protocol(methods=[{"name": "lff"}], train={"epochs": 3}, eval={"projection_points": 50})
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert main([str(protocol), "--output", str(whole), "--quiet"]) == 0
    real_save = state_module.save_checkpoint

    def save_then_die(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        if state["epoch"] == 2:
            raise Interrupt

    monkeypatch.setattr(state_module, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupt):
        main([str(protocol), "--output", str(resumed), "--quiet"])
    monkeypatch.setattr(state_module, "save_checkpoint", real_save)
    assert main([str(protocol), "--output", str(resumed), "--quiet", "--resume"]) == 0
    run = Path("runs") / "lff-rho0.99-seed0"
    for name in ("metrics.json", READOUTS_FILE, "history.csv"):
        if name == "history.csv":
            losses = [pd.read_csv(folder / run / name)["loss"].tolist() for folder in (whole, resumed)]
            assert losses[0] == losses[1]
        else:
            assert (whole / run / name).read_text() == (resumed / run / name).read_text()
