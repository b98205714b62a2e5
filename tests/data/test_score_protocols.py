"""Score metrics end to end: UTKFace and CelebA protocols on fixtures in the real layout write them everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from test_protocol_data import protocol_file

from ceco_fair.metrics.specs import METRIC_SPECS, outcome_metrics
from ceco_fair.results.layout import REPORT_FILE, RESULTS_CSV, SCORES_FILE
from ceco_fair.run import main
from ceco_fair.summary import summary_markdown

SCORE_METRICS = ("auroc", "worst_group_auroc", "auroc_gap", "ece", "ece_gap", "score_gap", "score_gap_eo", "abcc")


def run_protocol(tmp_path: Path, data: dict[str, Any]) -> Path:
    methods = [{"name": "ce"}, {"name": "supcon"}]
    path = protocol_file(tmp_path, data, methods=methods, eval={"n_boot": 40, "projection_points": 50}, report=True)
    output = tmp_path / "out"
    assert main([str(path), "--output", str(output), "--quiet"]) == 0
    return output


@pytest.mark.parametrize("dataset", ["utkface", "celeba"])
def test_a_face_protocol_writes_every_score_metric_into_results_summary_and_report(
    dataset: str, make_utkface: Callable[..., Path], make_celeba: Callable[..., Path], tmp_path: Path
) -> None:
    if dataset == "utkface":
        root = str(make_utkface(240))
        data: dict[str, Any] = {"dataset": "utkface", "root": root, "image_size": 24, "preflight": True}
    else:
        data = {"dataset": "celeba", "root": str(make_celeba(200)), "image_size": 24}
    output = run_protocol(tmp_path, data)
    table = pd.read_csv(output / RESULTS_CSV)
    recorded = set(outcome_metrics("group"))
    assert set(SCORE_METRICS) <= recorded
    for readout in ("linear", "balanced", "head"):
        assert recorded <= set(table.loc[table["readout"] == readout, "metric"]), readout
    run = output / "runs" / sorted(path.name for path in (output / "runs").iterdir())[0]
    scores = pd.read_csv(run / SCORES_FILE)
    linear = scores[scores["readout"] == "linear"]
    rows = table[(table["run_id"] == run.name) & (table["readout"] == "linear") & (table["metric"] == "auroc")]
    auroc = rows["value"].item()
    assert auroc == pytest.approx(roc_auc_score(linear["target"], linear["score_1"]), abs=1e-4)  # %.6g scores
    comparisons = pd.read_csv(output / "comparisons.csv")
    assert {"worst_group_auroc", "auroc_gap", "abcc"} <= set(comparisons["metric"])
    summary = summary_markdown(output, list(SCORE_METRICS))
    for name in SCORE_METRICS:
        assert f"| {METRIC_SPECS[name].label}" in summary, name
    page = (output / REPORT_FILE).read_text(encoding="utf-8")
    assert 'id="scores"' in page and "ROC curve per group" in page and "ABCC" in page
    assert "10 equal-width bins" in page


def test_a_group_holding_one_class_gets_nan_auroc_a_reason_in_the_record_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    import numpy as np

    from ceco_fair.evaluation.auditing import audit_features

    rng = np.random.default_rng(0)
    train_y = rng.integers(0, 2, 300)
    train_x = rng.normal(size=(300, 4)) + train_y[:, None]
    test_y, test_s = rng.integers(0, 2, 200), rng.integers(0, 3, 200)
    test_y[test_s == 2] = 1  # group 2 holds positives only: its AUROC is undefined
    test_x = rng.normal(size=(200, 4)) + test_y[:, None]
    with caplog.at_level(logging.INFO, logger="ceco_fair.evaluation.auditing"):
        result = audit_features(train_x, train_y, test_x, test_y, test_s, metrics="group", n_boot=30, progress=False)
    scores = result.scores["linear"][:, 1]
    assert result.metrics["auroc"] == pytest.approx(roc_auc_score(test_y, scores), abs=1e-12)  # pooled: defined
    defined = [roc_auc_score(test_y[test_s == g], scores[test_s == g]) for g in (0, 1)]
    assert result.metrics["worst_group_auroc"] == pytest.approx(min(defined), abs=1e-12)  # group 2 left out
    notes = result.info["score_notes"]["linear"]
    assert any("2" in note and "class" in note for note in notes), notes
    lines = [record.message for record in caplog.records if "linear read-out:" in record.message]
    assert len(lines) == len(notes) and len(set(lines)) == len(lines)


def test_the_train_weighted_accuracy_weighs_test_cells_by_their_training_share() -> None:
    import numpy as np

    from ceco_fair.evaluation.auditing import audit_features

    rng = np.random.default_rng(1)
    train_y, train_s = rng.integers(0, 2, 400), rng.choice(3, 400, p=[0.6, 0.3, 0.1])
    train_x = rng.normal(size=(400, 4)) + train_y[:, None]
    test_y, test_s = rng.integers(0, 2, 300), rng.integers(0, 3, 300)
    test_x = rng.normal(size=(300, 4)) + test_y[:, None]
    result = audit_features(
        train_x, train_y, test_x, test_y, test_s, train_sensitive=train_s, metrics="group", n_boot=40, progress=False
    )
    predicted = result.predictions["prediction"].to_numpy()
    weighted, total = 0.0, 0.0
    for t in range(2):
        for g in range(3):
            rows = (test_y == t) & (test_s == g)
            share = float(np.mean((train_y == t) & (train_s == g)))
            weighted += share * float(np.mean(predicted[rows] == t))
            total += share
    value = result.metrics["train_weighted_accuracy"]
    assert value == pytest.approx(weighted / total, abs=1e-12)
    assert (
        result.metrics["train_weighted_accuracy_ci_low"] <= value <= result.metrics["train_weighted_accuracy_ci_high"]
    )
    assert "train_weighted_accuracy" in result.readouts["balanced"]
