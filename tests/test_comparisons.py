import math

import numpy as np
import pytest
from scipy import stats

from ceco_fair.results.comparisons import default_baseline, paired_comparisons
from ceco_fair.results.layout import COMPARISONS_COLUMNS
from ceco_fair.results.record import condition_label


def run(method, seed, rho=0.9, loss=None, status="complete", **metrics):
    return {
        "method": method,
        "loss": loss or method,
        "seed": seed,
        "rho": rho,
        "target": None,
        "sensitive": None,
        "status": status,
        "metrics": metrics,
    }


def hand_interval(differences, confidence=0.95):
    d = np.array(differences, dtype=float)
    n = len(d)
    mean = d.sum() / n
    sd = math.sqrt(((d - mean) ** 2).sum() / (n - 1))
    q = stats.t.ppf((1 + confidence) / 2, n - 1)
    return mean, mean - q * sd / math.sqrt(n), mean + q * sd / math.sqrt(n)


def test_paired_differences_match_hand_computation():
    base = {0: 0.30, 1: 0.35, 2: 0.20, 3: 0.41}
    mine = {0: 0.40, 1: 0.38, 2: 0.29, 3: 0.40}
    runs = [run("supcon", s, unbiased_accuracy=v) for s, v in base.items()]
    runs += [run("contex", s, unbiased_accuracy=v) for s, v in mine.items()]
    table = paired_comparisons(runs, kind="bias", confidence=0.9)
    assert list(table.columns) == list(COMPARISONS_COLUMNS)
    row = table.set_index("metric").loc["unbiased_accuracy"]
    mean, low, high = hand_interval([mine[s] - base[s] for s in base], 0.9)
    assert row["method"] == "contex" and row["baseline"] == "supcon" and row["condition"] == "rho=0.9"
    assert row["n_seeds"] == 4
    assert row["mean_difference"] == pytest.approx(mean, abs=1e-12)
    assert row["ci_low"] == pytest.approx(low, abs=1e-12)
    assert row["ci_high"] == pytest.approx(high, abs=1e-12)


def test_one_seed_has_no_interval():
    runs = [run("supcon", 0, unbiased_accuracy=0.3), run("contex", 0, unbiased_accuracy=0.5)]
    row = paired_comparisons(runs, kind="bias").iloc[0]
    assert row["n_seeds"] == 1
    assert row["mean_difference"] == pytest.approx(0.2)
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])


def test_missing_seed_and_failed_run_are_not_paired():
    runs = [run("supcon", s, unbiased_accuracy=0.1 * s) for s in range(4)]
    runs += [run("contex", s, unbiased_accuracy=0.1 * s + d) for s, d in ((0, 0.05), (1, 0.1), (3, 0.0))]
    runs.append(run("contex", 2, status="failed"))  # failed: no metrics
    runs.append(run("ce", 2, status="failed", unbiased_accuracy=0.9))  # failed, even with a value
    table = paired_comparisons(runs, kind="bias")
    row = table[(table.method == "contex") & (table.metric == "unbiased_accuracy")].iloc[0]
    mean, low, high = hand_interval([0.05, 0.1, 0.0])
    assert row["n_seeds"] == 3
    assert row["mean_difference"] == pytest.approx(mean)
    assert row["ci_low"] == pytest.approx(low) and row["ci_high"] == pytest.approx(high)
    assert "ce" not in set(table.method)


def test_conditions_are_compared_separately_and_baseline_defaults():
    runs = []
    for rho, gain in ((0.8, 0.1), (0.9, -0.1)):
        runs += [run("SupCon (tau 0.2)", s, rho, loss="supcon", bias_sensitivity=0.5) for s in range(3)]
        runs += [run("mine", s, rho, loss="contex", bias_sensitivity=0.5 + gain + 0.01 * s) for s in range(3)]
    assert default_baseline(runs) == "SupCon (tau 0.2)"
    table = paired_comparisons(runs, kind="bias").set_index("condition")
    assert table.loc["rho=0.8", "mean_difference"] == pytest.approx(0.11)
    assert table.loc["rho=0.9", "mean_difference"] == pytest.approx(-0.09)
    explicit = paired_comparisons(runs, kind="bias", baseline="mine")
    assert set(explicit.method) == {"SupCon (tau 0.2)"}


def test_group_headline_metrics_and_attribute_condition():
    runs = [
        {**run("supcon", s, rho=None, worst_group_accuracy=0.6), "target": "Attractive", "sensitive": "Male"}
        for s in range(2)
    ] + [
        {**run("fscl", s, rho=None, worst_group_accuracy=0.7), "target": "Attractive", "sensitive": "Male"}
        for s in range(2)
    ]
    table = paired_comparisons(runs, kind="group")
    assert set(table.metric) == {"worst_group_accuracy"}
    assert table.condition.iloc[0] == "Attractive-vs-Male"
    assert condition_label(None, "Young", ["Male", "Young"]) == "Young-vs-Male+Young"
    assert table.ci_low.iloc[0] == pytest.approx(0.1) and table.ci_high.iloc[0] == pytest.approx(0.1)


def test_readouts_are_paired_within_a_readout_and_only_where_the_baseline_has_it():
    def with_readouts(method, seed, linear, balanced, head=None):
        record = run(method, seed, unbiased_accuracy=linear)
        record["readouts"] = {"balanced": {"unbiased_accuracy": balanced}}
        if head is not None:
            record["readouts"]["head"] = {"unbiased_accuracy": head}
        return record

    runs = [with_readouts("supcon", s, 0.3, 0.5) for s in range(2)]
    runs += [with_readouts("groupdro", s, 0.4 + 0.1 * s, 0.45, head=0.6) for s in range(2)]
    table = paired_comparisons(runs, kind="bias").set_index("readout")
    assert list(table.index) == ["linear", "balanced"]  # supcon trains no head: nothing to pair it with
    assert table.loc["linear", "mean_difference"] == pytest.approx(0.15)
    assert table.loc["balanced", "mean_difference"] == pytest.approx(-0.05)
