"""Your own loss: a method named "package.module:Name" trains with it; its keywords are checked first."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_protocol import run_cli
from user_loss import ViewAgreement

from ceco_fair.common.user_code import check_call_arguments
from ceco_fair.errors import CecoFairError
from ceco_fair.runner.protocol import load_protocol
from ceco_fair.training.methods import Contrastive


def test_user_loss_is_called_and_its_label_names_the_method(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ViewAgreement.calls.clear()
    protocol = write_protocol(
        methods=[{"name": "user_loss:ViewAgreement", "scale": 2.0, "label": "agree"}],
        train={"epochs": 1, "max_batches_per_epoch": 2},
    )
    status, err = run_cli(protocol, tmp_path / "out", capsys)
    assert status == 0, err
    assert ViewAgreement.calls == [((64, 2, 16), (64,), (64,))] * 2
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(results["method"]) == {"agree"} and set(results["run_id"]) == {"agree-rho0.99-seed0"}
    history = pd.read_csv(tmp_path / "out" / "runs" / "agree-rho0.99-seed0" / "history.csv")
    assert 0 < history["loss"].iloc[0] <= 2 * 4  # scale 2 times a squared distance of unit vectors


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ({"name": "user_loss:ViewAgreement", "scal": 2.0}, ["methods[0].scal", "did you mean 'scale'"]),
        ({"name": "user_loss:Nothing"}, ["methods[0].name", "no callable 'Nothing'"]),
        ({"name": "no_such_module:Loss"}, ["methods[0].name", "cannot import module 'no_such_module'"]),
    ],
)
def test_wrong_user_loss_is_one_line_at_validation(
    method: dict[str, object],
    expected: list[str],
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, err = run_cli(write_protocol(methods=[method]), tmp_path / "out", capsys, "--dry-run")
    assert status == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error:") and all(fragment in line for fragment in expected), line
    assert not (tmp_path / "out").exists()


def test_a_loss_that_raises_when_built_stops_before_anything_is_written(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol(methods=["ce", {"name": "user_loss:Raises"}])
    assert run_cli(protocol, tmp_path / "out", capsys, "--dry-run")[0] == 0  # validation builds nothing
    status, err = run_cli(protocol, tmp_path / "out", capsys)
    assert status == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error:") and "RuntimeError: this loss cannot be built" in line
    assert not (tmp_path / "out").exists()


def test_signature_check_calls_nothing_and_names_missing_keywords() -> None:
    called = []

    def factory(depth: int, *, width: int = 4) -> None:
        called.append(depth)

    check_call_arguments(factory, {"depth": 2, "width": 3}, "encoder.kwargs", "m:factory")
    with pytest.raises(CecoFairError, match=r"encoder.kwargs.depth: m:factory requires the keyword 'depth'"):
        check_call_arguments(factory, {"width": 3}, "encoder.kwargs", "m:factory")
    with pytest.raises(CecoFairError, match=r"encoder.kwargs.widht: .*did you mean 'width'"):
        check_call_arguments(factory, {"depth": 1, "widht": 3}, "encoder.kwargs", "m:factory")
    check_call_arguments(lambda **anything: None, {"x": 1}, "k", "m:f")
    assert called == []


def test_readme_loss_example_validates_and_computes(
    write_protocol: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Your own loss") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "my_losses.py").write_text(code.group(1), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    methods = yaml.safe_load(code.group(1).splitlines()[0].split("in the protocol:")[1])["methods"]
    protocol = load_protocol(write_protocol(methods=methods))
    assert [m.label for m in protocol.methods] == ["align"]
    method = protocol.methods[0].config.build()
    assert isinstance(method, Contrastive)
    loss = method.contrastive_loss()
    same = torch.randn(5, 1, 4).expand(5, 2, 4)
    assert loss(same, torch.zeros(5), torch.zeros(5)).item() == pytest.approx(0.0, abs=1e-6)
    opposite = torch.cat([same[:, :1], -same[:, :1]], dim=1)
    assert loss(opposite, torch.zeros(5), torch.zeros(5)).item() == pytest.approx(2.0 * 4.0)
