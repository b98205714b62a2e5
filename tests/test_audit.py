"""audit() and audit_features(): any encoder, one call, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import Subset

from ceco_fair import AuditOptions, AuditResult, audit, audit_features
from ceco_fair.data import ColoredMNIST
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.eval_config import EvalConfig
from ceco_fair.evaluation.probe import ProbeConfig
from ceco_fair.metrics import metric_names
from ceco_fair.metrics.specs import outcome_metrics, spec_of
from ceco_fair.models.encoders import build_encoder
from ceco_fair.report.load import load_results

GROUP_METRICS = set(metric_names())


@pytest.fixture(scope="module")
def colored() -> tuple[ColoredMNIST, ColoredMNIST]:
    return ColoredMNIST(source="embedded", split="train", rho=0.9), ColoredMNIST(source="embedded", split="test")


def test_audit_end_to_end_on_colored_mnist(colored: tuple[ColoredMNIST, ColoredMNIST], tmp_path: Path) -> None:
    torch.manual_seed(0)
    train, test = colored
    result = audit(
        build_encoder("small_conv", feature_dim=16),
        train,
        test,
        device="cpu",
        n_boot=200,
        probe_config=ProbeConfig(epochs=3),
        progress=False,
        name="small_conv",
    )
    assert isinstance(result, AuditResult) and result.kind == "group"
    assert GROUP_METRICS <= set(result.metrics)
    assert set(outcome_metrics("group")) <= set(result.metrics)  # the score metrics of the class probabilities too
    scores = result.scores["linear"][:, 1]
    assert result.metrics["auroc"] == pytest.approx(roc_auc_score(result.predictions["target"], scores), abs=1e-12)
    assert all(spec_of(name) is not None for name in result.metrics)
    assert result.info["target"] == "digit ≥ 5" and result.info["sensitive"] == "background colour"
    assert result.info["group_colours"] == ["rgb(255,0,0)", "rgb(0,255,0)"]
    for name in GROUP_METRICS:
        low, value, high = (
            result.metrics[f"{name}_ci_low"],
            result.metrics[name],
            result.metrics[f"{name}_ci_high"],
        )
        assert low <= value + 1e-9 and value <= high + 1e-9, name
    assert len(result.predictions) == len(test)
    accuracy = float((result.predictions["prediction"] == result.predictions["target"]).mean())
    assert result.metrics["accuracy"] == pytest.approx(accuracy)
    assert result.group_table is not None and len(result.group_table) == 2
    frame = result.to_frame()
    assert set(frame["metric"]) == set(result.metrics)
    folder = result.save(tmp_path / "audit")
    saved = pd.read_csv(folder / "results.csv")
    assert set(saved["metric"]) == set(result.metrics) and (saved["method"] == "small_conv").all()
    assert set(result.readouts) == {"balanced"} and set(saved["readout"]) == {"linear", "balanced"}
    assert set(result.readouts["balanced"]) == {m for m in result.metrics if spec_of(m).kind == "group"}
    assert (folder / "runs" / "small_conv" / "group_table.csv").exists()
    assert "<html" in (folder / "report.html").read_text(encoding="utf-8")[:500].lower()


def test_torchvision_resnet18_works_out_of_the_box(
    colored: tuple[ColoredMNIST, ColoredMNIST],
) -> None:
    from torchvision.models import resnet18

    train, test = colored
    torch.manual_seed(0)
    result = audit(
        resnet18(weights=None),
        Subset(train, range(96)),
        Subset(test, range(64)),
        device="cpu",
        n_boot=0,
        probe_config=ProbeConfig(epochs=2),
        progress=False,
        metrics="group",
    )
    assert 0 <= result.metrics["accuracy"] <= 1 and len(result.predictions) == 64


def test_audit_features_from_numpy_matches_a_plain_probe_accuracy() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 1200)
    sensitive = rng.integers(0, 3, 1200)
    centres = rng.normal(size=(2, 6)) * 0.9  # overlapping classes: a plain probe reaches about 92%, not 100%
    features = centres[targets] + rng.normal(size=(1200, 6)) + 5.0 * rng.normal(size=6)
    train, test = slice(0, 900), slice(900, None)
    result = audit_features(
        features[train],
        targets[train],
        features[test],
        targets[test],
        sensitive[test],
        n_boot=0,
        device="cpu",
        probe_config=ProbeConfig(epochs=100, lr=0.05),
        metrics="group",
    )
    plain = LogisticRegression(max_iter=2000).fit(features[train], targets[train]).predict(features[test])
    predictions = result.predictions["prediction"].to_numpy()
    assert np.mean(predictions == plain) >= 0.97  # the audit's probe is that plain probe, up to its optimiser
    assert result.metrics["accuracy"] == pytest.approx(np.mean(plain == targets[test]), abs=0.02)
    assert result.metrics["accuracy"] == pytest.approx(np.mean(predictions == targets[test]), abs=1e-12)
    assert result.group_table is not None and list(result.group_table["count"]) == list(
        np.bincount(sensitive[test], minlength=3)
    )


def test_bias_metrics_chosen_when_bias_indexes_the_classes() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 10, 500)
    bias = rng.integers(0, 10, 500)
    features = np.eye(10)[targets] + rng.normal(scale=0.1, size=(500, 10))
    result = audit_features(features, targets, features, targets, bias, n_boot=0, device="cpu")
    assert result.kind == "bias" and result.bias_matrix is not None and result.bias_matrix.shape == (10, 10)
    assert "bias_conflicting_accuracy" in result.metrics


def test_audit_errors_are_clear() -> None:
    features = np.zeros((10, 4))
    labels = np.array([0, 1] * 5)
    with pytest.raises(CecoFairError, match="test_targets: 9 values for 10"):
        audit_features(features, labels, features, labels[:9], labels, device="cpu")
    with pytest.raises(CecoFairError, match="only one group"):
        audit_features(features, labels, features, labels, np.zeros(10, dtype=int), device="cpu")
    with pytest.raises(CecoFairError, match="binary target"):
        audit_features(features, labels, features, np.arange(10) % 3, labels, metrics="group", device="cpu")
    with pytest.raises(CecoFairError, match=r"\[n, D\]"):
        audit_features(np.zeros(10), labels, features, labels, labels, device="cpu")


def test_encoder_with_wrong_output_shape(colored: tuple[ColoredMNIST, ColoredMNIST]) -> None:
    train, test = colored
    with pytest.raises(CecoFairError, match="encoder output"):
        audit(
            nn.Identity(),
            Subset(train, range(8)),
            Subset(test, range(8)),
            device="cpu",
            progress=False,
        )


def separable(n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, n)
    sensitive = rng.integers(0, 2, n)
    return rng.normal(size=(n, 4)) + targets[:, None] * 2.0 + sensitive[:, None], targets, sensitive


def test_options_object_and_keywords_audit_alike() -> None:
    features, targets, sensitive = separable()
    arrays = (features[:200], targets[:200], features[200:], targets[200:], sensitive[200:])
    options = AuditOptions(
        probe=ProbeConfig(epochs=3, lr=0.05), eval=EvalConfig(n_boot=50, confidence=0.9), seed=3, device="cpu"
    )
    by_object = audit_features(*arrays, options)
    by_keywords = audit_features(
        *arrays, probe_config=ProbeConfig(epochs=3, lr=0.05), n_boot=50, confidence=0.9, seed=3, device="cpu"
    )
    assert by_object.metrics == by_keywords.metrics
    assert by_keywords.options == options
    other_seed = audit_features(*arrays, options, seed=4)
    assert other_seed.options is not None and other_seed.options.seed == 4
    assert other_seed.metrics != by_object.metrics


def test_an_unknown_option_is_named_with_the_closest_one() -> None:
    features, targets, sensitive = separable(40)
    with pytest.raises(CecoFairError, match=r"n_bot: not an audit option \(did you mean 'n_boot'\?\)"):
        audit_features(features, targets, features, targets, sensitive, n_bot=10)
    with pytest.raises(CecoFairError, match=r"readouts: unknown read-out 'nonlinear' \(did you mean 'linear'\?\)"):
        AuditOptions().with_keywords(probe="nonlinear")
    with pytest.raises(CecoFairError, match=r"eval\.confidence"):
        AuditOptions().with_keywords(confidence=1.5)


def test_saved_audit_records_its_settings(tmp_path: Path) -> None:
    features, targets, sensitive = separable()
    options = AuditOptions(probe=ProbeConfig(epochs=2), eval=EvalConfig(n_boot=20, confidence=0.8), seed=5)
    result = audit_features(
        features[:200], targets[:200], features[200:], targets[200:], sensitive[200:], options, device="cpu"
    )
    folder = result.save(tmp_path / "saved", report=False)
    protocol = yaml.safe_load((folder / "protocol.yaml").read_text(encoding="utf-8"))
    assert protocol["seeds"] == [5] and protocol["probe"]["epochs"] == 2
    assert protocol["eval"] == {"n_boot": 20, "confidence": 0.8, "projection_points": 2000, "batch_size": 512}
    assert load_results(folder).confidence == pytest.approx(0.8)
    saved = pd.read_csv(folder / "results.csv")
    assert dict(zip(saved["metric"], saved["value"], strict=True)) == pytest.approx(result.metrics)
    assert (saved["seed"] == 5).all()
