"""Protocol validation: every bad protocol fails before training, in one line, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ceco_fair.run import main
from ceco_fair.runner.protocol import load_protocol


def run_cli(protocol: Path, output: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = main([str(protocol), "--output", str(output), "--quiet", *extra])
    return status, capsys.readouterr().err


BAD_PROTOCOLS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown top-level key", {"methds": []}, ["methds", "did you mean 'methods'"]),
    (
        "unknown nested key",
        {"train": {"optimizer": {"name": "adam", "lrr": 0.1}}},
        ["train.optimizer.lrr", "'lr'"],
    ),
    ("wrong type", {"train": {"epochs": "ten"}}, ["train.epochs", "'ten'"]),
    ("bool is not an int", {"train": {"epochs": True}}, ["train.epochs"]),
    ("rho above one", {"data": {"rho": [0.99, 1.5]}}, ["data.rho[1]", "(0, 1]"]),
    ("rho zero", {"data": {"rho": 0.0}}, ["data.rho", "(0, 1]"]),
    ("unknown method", {"methods": [{"name": "supcn"}]}, ["methods[0].name", "'supcon'"]),
    (
        "unknown loss option",
        {"methods": [{"name": "contex", "temprature": 0.1}]},
        ["methods[0].temprature", "temperature"],
    ),
    (
        "bad temperature",
        {"methods": [{"name": "supcon", "temperature": -1}]},
        ["methods[0]", "temperature"],
    ),
    ("unknown encoder", {"encoder": {"arch": "resnet99"}}, ["encoder.arch", "resnet99"]),
    (
        "missing data path",
        {"data": {"source": {"idx_dir": "/nonexistent/mnist"}}},
        ["/nonexistent/mnist", "t10k-images-idx3-ubyte"],
    ),
    ("empty seeds", {"seeds": []}, ["seeds", "empty"]),
    ("empty rho", {"data": {"rho": []}}, ["data.rho", "empty"]),
    ("unknown dataset", {"data": {"dataset": "biased_mnits"}}, ["data.dataset", "'biased_mnist'"]),
    ("unknown data key", {"data": {"rhoo": 0.9}}, ["data.rhoo"]),
    (
        "duplicate labels",
        {"methods": [{"name": "supcon"}, {"name": "supcon"}]},
        ["methods", "supcon"],
    ),
    ("warm-up too long", {"train": {"warmup_epochs": 5}}, ["train.warmup_epochs"]),
    (
        "unknown optimizer",
        {"train": {"optimizer": {"name": "lamb"}}},
        ["train.optimizer.name", "lamb"],
    ),
]


@pytest.mark.parametrize(("case", "override", "expected"), BAD_PROTOCOLS, ids=[c[0] for c in BAD_PROTOCOLS])
def test_bad_protocol_exits_2_with_one_line_naming_the_key(
    case: str,
    override: dict[str, Any],
    expected: list[str],
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    protocol = write_protocol(**override)
    output = tmp_path / "out"
    status, err = run_cli(protocol, output, capsys)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(protocol) in lines[0]
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err
    assert not output.exists()


def test_invalid_yaml_names_the_line(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol("name: x\ndata: [unclosed\n")
    status, err = run_cli(protocol, tmp_path / "out", capsys)
    assert status == 2
    assert "line" in err and str(protocol) in err


def test_missing_protocol_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = run_cli(tmp_path / "nope.yaml", tmp_path / "out", capsys)
    assert status == 2 and "nope.yaml" in err


def test_existing_output_is_never_overwritten(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "results.csv").write_text("precious\n")
    status, err = run_cli(write_protocol(), output, capsys)
    assert status == 2 and "--resume" in err
    assert (output / "results.csv").read_text() == "precious\n"


def test_dry_run_prints_the_grid_and_writes_nothing(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol(seeds=[0, 1], data={"rho": [0.99, 0.995]})
    output = tmp_path / "out"
    status = main([str(protocol), "--output", str(output), "--dry-run"])
    out = capsys.readouterr().out
    assert status == 0
    assert "8 runs" in out
    assert "contex-rho0.995-seed1" in out and "ce-rho0.99-seed0" in out
    assert not output.exists()


def test_grid_and_resolved_defaults(write_protocol: Callable[..., Path]) -> None:
    protocol = load_protocol(write_protocol(seeds=[0, 1], data={"rho": [0.99, 0.995]}))
    grid = protocol.grid()
    assert len(grid) == 2 * 2 * 2
    assert len({run.run_id for run in grid}) == len(grid)
    resolved = protocol.resolved()
    assert resolved["train"]["optimizer"]["name"] == "adam"
    assert resolved["methods"][1]["temperature"] == 0.1
    assert resolved["data"]["rho"] == [0.99, 0.995]


def test_biascon_defaults_to_auxiliary_cross_entropy(write_protocol: Callable[..., Path]) -> None:
    protocol = load_protocol(write_protocol(methods=[{"name": "biascon"}, {"name": "supcon"}]))
    assert protocol.methods[0].config.cross_entropy_weight == pytest.approx(0.01)
    assert protocol.methods[1].config.cross_entropy_weight == 0.0
    assert [method["ce_weight"] for method in protocol.resolved()["methods"]] == [0.01, 0.0]
    explicit = load_protocol(write_protocol(methods=[{"name": "biascon", "ce_weight": 0}, {"name": "supcon"}]))
    assert explicit.methods[0].config.cross_entropy_weight == 0.0


def test_cli_subprocess_has_no_traceback(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    protocol = write_protocol(train={"epochs": -3})
    done = subprocess.run(
        [sys.executable, "-m", "ceco_fair.run", str(protocol), "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "train.epochs" in done.stderr
    assert "Traceback" not in done.stderr


def test_shipped_protocols_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "protocols"
    for path in sorted(root.glob("*.yaml")):
        protocol = load_protocol(path, check_data=False)
        assert protocol.grid(), path
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            stripped = line.strip()
            if ":" in stripped and not stripped.startswith(("#", "-")) and not stripped.endswith(">-"):
                assert "#" in line, f"{path.name}: key without a comment: {line!r}"
