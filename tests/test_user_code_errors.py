"""User code that fails: one line naming it, the run and the step; a grid goes on; encoders load anywhere."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_protocol import tiny_protocol_dict
from user_datasets import ShadedDigits, Squares

from ceco_fair import audit, load_encoder
from ceco_fair.data.registry import build_dataset
from ceco_fair.errors import CecoFairError, UserCodeError
from ceco_fair.report import build_report
from ceco_fair.results.layout import LOG_FILE, REPORT_FILE, RESULTS_JSON, RUN_FILE, run_dir
from ceco_fair.run import main
from ceco_fair.training.user_loss import build_user_loss

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FAST_TRAIN = {"epochs": 1, "batch_size": 64, "max_batches_per_epoch": 2}


def cli(protocol: Path, output: Path, *extra: str, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``python -m ceco_fair.run PROTOCOL --output OUTPUT --quiet ...`` in a fresh process, ``path`` on PYTHONPATH."""
    return subprocess.run(
        [sys.executable, "-m", "ceco_fair.run", str(protocol), "--output", str(output), "--quiet", *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(p) for p in (*path, TESTS, ROOT)),
            "PYTHONDONTWRITEBYTECODE": "1",  # a module rewritten within a second is read again, not its cache
        },
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


BEFORE_TRAINING: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "dataset preflight raises",
        {"data": {"dataset": "user_datasets:PreflightFails"}},
        ["data.dataset 'user_datasets:PreflightFails' (preflight) raised KeyError:", "no column 'smiling'"],
    ),
    (
        "dataset constructor raises",
        {"data": {"dataset": "user_datasets:BuildFails"}},
        ["data.dataset 'user_datasets:BuildFails' (split 'train') raised ZeroDivisionError: cannot build the train"],
    ),
    (
        "encoder returns a tuple",
        {"encoder": {"arch": "tiny_encoder:pair"}},
        ["encoder.arch 'tiny_encoder:pair': expected features [B, D] for a batch of B = 2 images, got tuple"],
    ),
    (
        "encoder raises on a batch",
        {"encoder": {"arch": "tiny_encoder:fails_forward"}},
        [
            "encoder.arch 'tiny_encoder:fails_forward' (a forward pass on a batch of 2 images) raised RuntimeError: "
            "no forward pass for images of 28 pixels"
        ],
    ),
    (
        "duplicate rho",
        {"data": {"dataset": "biased_mnist", "source": "embedded", "rho": [0.9, 0.5, 0.90]}},
        ["data.rho[2]: 0.9 repeats data.rho[0]"],
    ),
    (
        "duplicate attribute pair",
        {
            "data": {
                "dataset": "celeba",
                "attributes": [
                    {"target": "Smiling", "sensitive": "Male"},
                    {"target": "Smiling", "sensitive": "Young"},
                    {"target": "Smiling", "sensitive": "Male"},
                ],
            }
        },
        ["data.attributes[2]: Smiling vs Male repeats data.attributes[0]"],
    ),
]


@pytest.mark.parametrize(("case", "override", "expected"), BEFORE_TRAINING, ids=[c[0] for c in BEFORE_TRAINING])
def test_failures_before_training_are_one_line_exit_2_and_write_nothing(
    case: str, override: dict[str, Any], expected: list[str], write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    protocol = write_protocol({**tiny_protocol_dict(methods=["ce"], train=FAST_TRAIN), **override})
    done = cli(protocol, tmp_path / "out")
    assert done.returncode == 2, done.stderr
    line = one_error_line(done)
    assert all(fragment in line for fragment in expected), line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_traceback_flag_adds_the_user_traceback(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    protocol = write_protocol({**tiny_protocol_dict(methods=["ce"]), "data": {"dataset": "user_datasets:BuildFails"}})
    done = cli(protocol, tmp_path / "out", "--traceback")
    assert done.returncode == 2
    first, *rest = done.stderr.strip().splitlines()
    assert first.startswith("error: ") and "ZeroDivisionError" in first
    assert rest[0].startswith("Traceback") and "user_datasets.py" in done.stderr and "in __init__" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("raise", "loss 'user_loss:Broken' raised ValueError: cannot handle 4 images"),
        ("no_grad", "loss 'user_loss:Broken' returned a tensor without a gradient (requires_grad is False)"),
        ("vector", "loss 'user_loss:Broken' returned a tensor of shape [4], expected a scalar tensor"),
        ("nan", "loss 'user_loss:Broken' returned nan, expected a finite value"),
        ("number", "loss 'user_loss:Broken' returned a float, expected a scalar tensor"),
    ],
)
def test_a_user_loss_result_is_checked_and_named(mode: str, expected: str) -> None:
    loss = build_user_loss("user_loss:Broken", {"mode": mode})
    features = torch.randn(4, 2, 3, requires_grad=True)
    with pytest.raises(UserCodeError) as caught:
        loss(features, torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    assert str(caught.value).startswith(expected)
    assert ("Traceback" in caught.value.details) == (mode == "raise")
    located = caught.value.at("run r", "epoch 1, step 2")
    assert str(located) == f"run r, epoch 1, step 2: {caught.value}" and located.details == caught.value.details
    valid = build_user_loss("user_loss:ViewAgreement", {})
    assert valid(features, torch.zeros(4), torch.zeros(4)).requires_grad
    plain = build_user_loss("user_loss:Broken", {"mode": "no_grad"})  # features without a gradient: none needed
    assert plain(features.detach(), torch.zeros(4), torch.zeros(4)).ndim == 0


def test_a_dataset_item_that_raises_in_training_fails_its_run(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = {**tiny_protocol_dict(methods=["ce"], train=FAST_TRAIN), "data": {"dataset": "user_datasets:ReadFails"}}
    assert main([str(write_protocol(raw)), "--output", str(tmp_path / "out"), "--quiet"]) == 1
    record = json.loads((run_dir(tmp_path / "out", "ce-seed0") / RUN_FILE).read_text())
    assert record["status"] == "failed"
    assert record["error"].startswith(
        "run ce-seed0, epoch 1, step 1: dataset ReadFails (reading a batch of items) raised IndexError: item "
    )


def test_load_encoder_names_an_encoder_factory_it_cannot_import(tmp_path: Path) -> None:
    run = run_dir(tmp_path, "r")
    run.mkdir(parents=True)
    (run / "encoder.pt").write_bytes(b"")
    (tmp_path / "protocol.yaml").write_text("encoder: {arch: 'nowhere_module:make'}\nmethods: [{name: 'gone:Loss'}]\n")
    with pytest.raises(
        CecoFairError, match=r"protocol\.yaml: encoder\.arch 'nowhere_module:make': cannot import module"
    ):
        load_encoder(run)


FLAKY = """import torch


class Flaky(torch.nn.Module):
    def forward(self, features, labels, sensitive):
        {body}
"""
BROKEN_BODY = 'raise RuntimeError("not written yet")'
FIXED_BODY = "return (features[:, 0] - features[:, 1]).pow(2).mean()"


def test_a_failing_run_is_recorded_the_grid_goes_on_and_resume_completes_it(
    write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    module = modules / "flaky_loss.py"
    module.write_text(FLAKY.format(body=BROKEN_BODY), encoding="utf-8")
    methods = ["ce", {"name": "flaky_loss:Flaky", "label": "flaky"}, "simclr"]
    protocol = write_protocol(methods=methods, train=FAST_TRAIN)
    output = tmp_path / "out"
    done = cli(protocol, output, path=(modules,))
    assert done.returncode == 1, done.stderr
    build_report(output)
    runs = json.loads((output / RESULTS_JSON).read_text())["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [
        ("ce-rho0.99-seed0", "complete"),
        ("flaky-rho0.99-seed0", "failed"),
        ("simclr-rho0.99-seed0", "complete"),
    ]
    error = json.loads((run_dir(output, "flaky-rho0.99-seed0") / RUN_FILE).read_text())["error"]
    assert error == (
        "run flaky-rho0.99-seed0, epoch 1, step 1: loss 'flaky_loss:Flaky' raised RuntimeError: not written yet"
    )
    assert runs[1]["error"] == error
    assert escape(error) in (output / REPORT_FILE).read_text(encoding="utf-8")
    log = (output / LOG_FILE).read_text(encoding="utf-8")
    assert "Traceback" in log and "flaky_loss.py" in log and "Traceback" not in done.stderr
    assert error in done.stderr

    module.write_text(FLAKY.format(body=FIXED_BODY), encoding="utf-8")
    done = cli(protocol, output, "--resume", path=(modules,))
    assert done.returncode == 0, done.stderr
    runs = json.loads((output / RESULTS_JSON).read_text())["runs"]
    assert [r["status"] for r in runs] == ["complete"] * 3 and runs[1]["metrics"]
    assert "status failed" not in build_report(output).read_text(encoding="utf-8")


def test_an_encoder_trained_with_a_user_loss_loads_where_the_loss_is_gone(
    write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "gone_loss.py").write_text(FLAKY.format(body=FIXED_BODY), encoding="utf-8")
    protocol = write_protocol(methods=[{"name": "gone_loss:Flaky", "label": "gone"}], train=FAST_TRAIN)
    trained = tmp_path / "trained"
    done = cli(protocol, trained, path=(modules,))
    assert done.returncode == 0, done.stderr
    (modules / "gone_loss.py").unlink()
    modules.rmdir()
    run = run_dir(trained, "gone-rho0.99-seed0")
    script = (
        "import importlib.util, sys, torch\n"
        "from ceco_fair import load_encoder\n"
        "assert importlib.util.find_spec('gone_loss') is None\n"
        "encoder = load_encoder(sys.argv[1])\n"
        "print(list(encoder(torch.zeros(2, 3, 28, 28)).shape))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(run)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[2, 16]"

    audit_protocol = tmp_path / "audit.yaml"
    audit_protocol.write_text(
        json.dumps(tiny_protocol_dict(methods=["frozen"], encoder={"weights": str(run / "encoder.pt")})),
        encoding="utf-8",
    )
    audited = cli(audit_protocol, tmp_path / "audited")
    assert audited.returncode == 0, audited.stderr
    assert (run_dir(tmp_path / "audited", "frozen-rho0.99-seed0") / "metrics.json").is_file()


def test_a_pooled_encoder_output_is_flattened_with_a_log_line(
    write_protocol: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    protocol = write_protocol(methods=["frozen"], encoder={"arch": "tiny_encoder:unflattened", "kwargs": {"width": 6}})
    with caplog.at_level(logging.INFO):
        assert main([str(protocol), "--output", str(tmp_path / "out")]) == 0  # --quiet would quieten caplog too
    flattened = [r.getMessage() for r in caplog.records if "flattened" in r.getMessage()]
    expected = "encoder.arch 'tiny_encoder:unflattened' returns [B, C, 1, 1] features: flattened to [B, 6]"
    assert flattened == [expected, expected]  # the check before writing, then the run
    encoder = load_encoder(run_dir(tmp_path / "out", "frozen-rho0.99-seed0"))
    assert encoder(torch.zeros(3, 3, 28, 28)).shape == (3, 6)


class FewerGroups(Squares):
    """Squares whose test split claims three groups."""

    def __init__(self, split: str = "test") -> None:
        super().__init__(split)
        self.n_groups, self.group_names = 3, ["red", "green", "blue"]


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [
        (
            lambda: build_dataset("colored_mnist", "train", source="embedded"),
            lambda: build_dataset("biased_mnist", "test", source="embedded"),
            "the kind differs: train (ColoredMNIST) has 'group', test (BiasedMNIST) has 'bias'",
        ),
        (
            lambda: ShadedDigits("train", n=30),
            lambda: _with_classes(ShadedDigits("test", n=30), 4),
            "the number of classes differs: train (ShadedDigits) has 3, test (ShadedDigits) has 4",
        ),
        (
            lambda: Squares("train", n=30),
            lambda: FewerGroups(),
            "the number of groups differs: train (Squares) has 2, test (FewerGroups) has 3",
        ),
    ],
    ids=["kind", "classes", "groups"],
)
def test_audit_refuses_splits_of_different_datasets(
    train: Callable[[], Any], test: Callable[[], Any], expected: str
) -> None:
    with pytest.raises(CecoFairError, match=r"^train and test: ") as caught:
        audit(lambda images: images.flatten(1), train(), test(), progress=False)
    assert expected in str(caught.value)


def _with_classes(dataset: ShadedDigits, n_classes: int) -> ShadedDigits:
    dataset.n_classes = n_classes
    return dataset
