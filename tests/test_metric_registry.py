"""A representation metric defined here (a function of the features and one spec line) reaches
results.csv, the summary table and the report of a run with no other edit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ceco_fair.metrics.registry import REPRESENTATION_METRICS, RepresentationInputs, register, unregister
from ceco_fair.metrics.specs import METRIC_SPECS, MetricSpec
from ceco_fair.results.layout import REPORT_FILE, RESULTS_CSV
from ceco_fair.run import main
from ceco_fair.summary import summary_markdown

NAME = "mean_feature_norm"
SPEC = MetricSpec(NAME, "mean feature norm", "representation", "lower", unit="plain", decimals=3)


@pytest.fixture
def feature_norm() -> Iterator[list[np.ndarray]]:
    """Register the metric for one test; yields the features it was computed on."""
    seen: list[np.ndarray] = []

    def compute(inputs: RepresentationInputs) -> float:
        features = inputs.features.double().numpy()
        seen.append(features)
        return float(np.linalg.norm(features, axis=1).mean())

    register(SPEC, compute)
    try:
        yield seen
    finally:
        unregister(NAME)
    assert NAME not in METRIC_SPECS and NAME not in REPRESENTATION_METRICS


def test_a_registered_metric_reaches_results_summary_and_report(
    feature_norm: list[np.ndarray], write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    protocol = write_protocol(methods=[{"name": "supcon"}], report=True)
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    results = pd.read_csv(output / RESULTS_CSV)
    row = results[results["metric"] == NAME]
    assert len(row) == 1
    (features,) = feature_norm
    reference = sum(float(np.sqrt(sum(v * v for v in r))) for r in features) / len(features)
    assert row["value"].iloc[0] == pytest.approx(reference, rel=1e-12)
    assert features.shape[0] == 1000  # the whole test split

    table = summary_markdown(output)
    assert f"| mean feature norm | rho=0.99 |\n|---|---|\n| supcon | {reference:.3f} |" in table

    page = (output / REPORT_FILE).read_text(encoding="utf-8")
    assert "mean feature norm\\u003cbr\\u003e(lower is better)" in page  # a panel of the diagnostics figure


def test_registering_a_taken_name_or_another_kind_fails() -> None:
    with pytest.raises(ValueError, match="already"):
        register(MetricSpec("alignment", "alignment", "representation", "lower"), lambda inputs: 0.0)
    with pytest.raises(ValueError, match="kind 'representation'"):
        register(MetricSpec("made_up", "made up", "group", "lower"), lambda inputs: 0.0)
    assert "made_up" not in METRIC_SPECS
    unregister("alignment")  # a built-in diagnostic stays
    assert "alignment" in REPRESENTATION_METRICS
