"""docs/study.md quotes the runner's own files in docs/study/, and the study is as large as it says."""

from pathlib import Path

import pandas as pd

from ceco_fair.runner.protocol import load_protocol
from ceco_fair.summary import seed_summary, summary_markdown

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "study"


def test_study_has_five_seeds_per_method_and_rho():
    results = pd.read_csv(STUDY / "results.csv")
    protocol = load_protocol(ROOT / "protocols" / "distortion_study.yaml")
    unbiased = results[results.metric == "unbiased_accuracy"]
    seeds = unbiased.groupby(["method", "rho"])["seed"].nunique()
    assert len(seeds) == len(protocol.methods) * len(protocol.rhos)
    assert (seeds >= 5).all()
    assert 0.99 in set(unbiased.rho) and len(set(unbiased.rho) - {0.99}) >= 3


def test_every_mean_unbiased_accuracy_in_the_study_matches_results_csv():
    page = (ROOT / "docs" / "study.md").read_text(encoding="utf-8")
    for metric in ("unbiased_accuracy", "bias_conflicting_accuracy"):
        table = summary_markdown(STUDY, [metric]).strip()
        assert table in page, f"docs/study.md does not quote the {metric} table of docs/study/results.csv"
    summary = seed_summary(pd.read_csv(STUDY / "results.csv"), ["unbiased_accuracy"], 0.95)
    for mean in summary["mean"]:
        assert f"{100 * mean:.1f}" in page


def test_comparisons_csv_is_the_runners_paired_table():
    comparisons = pd.read_csv(STUDY / "comparisons.csv")
    assert set(comparisons.baseline) == {"supcon"}
    assert (comparisons.n_seeds >= 5).all()
    assert (comparisons.ci_low <= comparisons.mean_difference).all()
    assert (comparisons.mean_difference <= comparisons.ci_high).all()
