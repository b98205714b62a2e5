"""One frozen-encoder pipeline: audit() and a run measure alike, each read-out is fitted once, a registered
read-out reaches every table, and scores.csv holds every read-out's class probabilities."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import ceco_fair.evaluation.auditing as auditing
import ceco_fair.evaluation.readouts as readouts_module
from ceco_fair import audit, audit_features, load_encoder
from ceco_fair.evaluation.auditing import AuditOptions, evaluate_encoder
from ceco_fair.evaluation.probe import Features, ProbeConfig, train_linear_probe
from ceco_fair.evaluation.readouts import (
    READOUTS,
    Predictor,
    Readout,
    ReadoutInputs,
    register_readout,
    unregister_readout,
)
from ceco_fair.report import build_report
from ceco_fair.report.load import load_results
from ceco_fair.report.readers import read_scores
from ceco_fair.results.layout import PRIMARY_READOUT, SCORES_FILE
from ceco_fair.results.selection import validation_scores
from ceco_fair.run import main
from ceco_fair.runner.experiment import TRAIN_SPLIT, VALID_SPLIT, build_split
from ceco_fair.runner.protocol import load_protocol
from ceco_fair.summary import summary_markdown
from ceco_fair.training.batches import as_long

CLASS_BALANCED = "class_balanced"
CPU = torch.device("cpu")


class ClassBalancedReadout(Readout):
    """A user's read-out: the linear probe with each sample weighted by 1 / (its class's count)."""

    name = CLASS_BALANCED

    def fit(self, inputs: ReadoutInputs) -> Predictor:
        targets = as_long(inputs.train.targets)
        counts = torch.bincount(targets, minlength=inputs.n_classes).clamp_min(1).float()
        weights = len(targets) / (len(counts) * counts[targets])
        return train_linear_probe(
            inputs.train, inputs.n_classes, inputs.probe, seed=inputs.seed, device=inputs.device, weights=weights
        )


@pytest.fixture
def class_balanced() -> Iterator[Readout]:
    readout = register_readout(ClassBalancedReadout())
    try:
        yield readout
    finally:
        unregister_readout(CLASS_BALANCED)
    assert CLASS_BALANCED not in READOUTS


def same(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Equal keys and values, NaN equal to NaN."""
    return left.keys() == right.keys() and all(
        (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b
        for a, b in ((left[k], right[k]) for k in left)
    )


def test_a_registered_readout_reaches_every_table(
    class_balanced: Readout, write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    output = tmp_path / "out"
    assert main([str(write_protocol()), "--output", str(output), "--quiet"]) == 0
    results = pd.read_csv(output / "results.csv")
    mine = results[results["readout"] == CLASS_BALANCED]
    assert set(mine["method"]) == {"ce", "contex"}
    assert set(mine["metric"]) == {
        "accuracy",
        "unbiased_accuracy",
        "bias_aligned_accuracy",
        "bias_conflicting_accuracy",
    }
    comparisons = pd.read_csv(output / "comparisons.csv")
    assert CLASS_BALANCED in set(comparisons["readout"])
    assert list(dict.fromkeys(comparisons["readout"])) == ["linear", "balanced", CLASS_BALANCED]
    assert "contex" in summary_markdown(output, readout=CLASS_BALANCED)
    assert "ce · class_balanced" in summary_markdown(output, readout="all")
    build_report(output)
    assert CLASS_BALANCED in (output / "report.html").read_text(encoding="utf-8")
    scores = pd.read_csv(output / "runs" / "ce-rho0.99-seed0" / SCORES_FILE)
    assert list(dict.fromkeys(scores["readout"])) == ["linear", "balanced", "head", CLASS_BALANCED]
    predictions = pd.read_csv(output / "runs" / "ce-rho0.99-seed0" / "predictions.csv")
    for readout, rows in scores.groupby("readout"):
        probabilities = rows[[f"score_{c}" for c in range(10)]].to_numpy()
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4), readout
        assert (probabilities.argmax(axis=1) == rows["prediction"].to_numpy()).all(), readout
        assert (rows["target"].to_numpy() == predictions["target"].to_numpy()).all()
    linear = scores[scores["readout"] == PRIMARY_READOUT]
    assert (linear["prediction"].to_numpy() == predictions["prediction"].to_numpy()).all()
    accuracy = float((linear["prediction"] == linear["target"]).mean())
    metrics = json.loads((output / "runs" / "ce-rho0.99-seed0" / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["accuracy"])


def test_audit_and_a_run_measure_one_frozen_encoder_alike_through_one_path(
    write_protocol: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[str] = []
    measure = auditing.measure

    def spy(*args: Any, **kwargs: Any) -> auditing.AuditResult:
        measured.append("measure")
        return measure(*args, **kwargs)

    monkeypatch.setattr(auditing, "measure", spy)
    protocol_path = write_protocol(
        methods=["frozen"], probe={"epochs": 3, "balanced_on": "valid"}, data={"val_fraction": 0.2}
    )
    output = tmp_path / "out"
    assert main([str(protocol_path), "--output", str(output), "--quiet"]) == 0
    assert measured == ["measure"]
    run_dir = output / "runs" / "frozen-rho0.99-seed0"
    protocol = load_protocol(protocol_path)
    run = next(r for r in protocol.grid() if r.run_id == run_dir.name)
    train, test = build_split(protocol, run, TRAIN_SPLIT), build_split(protocol, run, "test")
    valid = build_split(protocol, run, VALID_SPLIT)
    options = AuditOptions(
        probe=protocol.probe,
        eval=protocol.eval,
        seed=run.seed,
        device="cpu",
        normalization=protocol.train.augment,
        view_augment=protocol.train.augment,
        progress=False,
    )
    encoder = load_encoder(run_dir)
    result = evaluate_encoder(encoder, train, test, options, valid=valid)
    assert measured == ["measure", "measure"]
    assert same(json.loads((run_dir / "metrics.json").read_text()), result.metrics)
    by_run = json.loads((run_dir / "readouts.json").read_text())
    assert set(by_run) == {"balanced", "head"} and set(result.readouts) == {"balanced"}  # an audit has no head
    assert by_run["balanced"] == result.readouts["balanced"]  # fitted on the validation split in both
    by_audit = audit(encoder, train, test, options, valid=valid)
    assert same(by_audit.metrics, result.metrics) and by_audit.readouts == result.readouts


def test_each_readout_is_fitted_once_and_validation_scores_the_same_probe(
    monkeypatch: pytest.MonkeyPatch, write_protocol: Callable[..., Path]
) -> None:
    protocol = load_protocol(write_protocol(data={"val_fraction": 0.2}))
    run = protocol.grid()[0]
    train, test, valid = (build_split(protocol, run, split) for split in (TRAIN_SPLIT, "test", VALID_SPLIT))
    fits: list[int] = []
    fit = readouts_module.train_linear_probe

    def counting(*args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        return fit(*args, **kwargs)

    monkeypatch.setattr(readouts_module, "train_linear_probe", counting)
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(8))
    torch.manual_seed(0)
    encoder(torch.zeros(1, 3, 28, 28))
    options = AuditOptions(probe=ProbeConfig(epochs=2), seed=3, device="cpu", progress=False, diagnostics=False)
    result = evaluate_encoder(encoder, train, test, options, valid=valid, validation_groups=True)
    assert len(fits) == 2  # linear and balanced: validation reuses the linear probe
    reader = options.reader()
    train_features, valid_features = reader.features(encoder, train, "train"), reader.features(encoder, valid, "valid")
    refit = fit(
        Features(train_features.features, train_features.targets, torch.zeros(len(train_features.targets))),
        train.n_classes,
        options.probe,
        seed=3,
        device=CPU,
    )
    expected = validation_scores(
        as_long(valid_features.targets).numpy(),
        refit.predict(valid_features.features).numpy(),
        as_long(valid_features.sensitive).numpy(),
        kind="bias",
        groups=True,
    )
    assert result.info["validation"] == expected
    test_features = reader.features(encoder, test, "test")
    assert (refit.predict(test_features.features).numpy() == result.predictions["prediction"].to_numpy()).all()


def test_a_folder_written_before_scores_csv_still_loads_and_reports(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    targets, sensitive = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    features = rng.normal(size=(300, 4)) + 2.0 * targets[:, None] + sensitive[:, None]
    result = audit_features(
        features[:200],
        targets[:200],
        features[200:],
        targets[200:],
        sensitive[200:],
        train_sensitive=sensitive[:200],
        n_boot=0,
        device="cpu",
        probe_config=ProbeConfig(epochs=2),
    )
    folder = result.save(tmp_path / "saved", report=False)
    run_dir = next((folder / "runs").iterdir())
    scores = read_scores(run_dir)
    assert scores is not None and list(dict.fromkeys(scores["readout"])) == ["linear", "balanced"]
    linear = scores[scores["readout"] == "linear"]
    expected = result.predictors["linear"].scores(torch.as_tensor(features[200:]).float()).numpy()
    assert np.allclose(linear[["score_0", "score_1"]].to_numpy(), expected, atol=1e-6)
    (run_dir / SCORES_FILE).unlink()  # as written before scores.csv existed
    assert read_scores(run_dir) is None
    assert load_results(folder).readouts["readout"].tolist().count("balanced") > 0
    build_report(folder)
    assert (folder / "report.html").is_file()
