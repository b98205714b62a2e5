"""Repeated searches (finals: repeat), the worst-class rule and the paired view across the search space."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats  # type: ignore[import-untyped]
from test_search import found_picks, recomputed_choice, search_protocol, write

from ceco_fair import select
from ceco_fair.results.layout import (
    COMPARISONS_FILE,
    PAIRED_TRIALS_FILE,
    REPORT_FILE,
    RESULTS_CSV,
    SEARCH_CSV,
    SELECTION_FILE,
)
from ceco_fair.results.selection import RULES, val_worst_class
from ceco_fair.run import main


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-repeat search of two methods (2 trials each, every rule), report included."""
    folder = tmp_path_factory.mktemp("repeated")
    raw = search_protocol(report=True, seeds=[0, 1])
    raw["search"] = {**raw["search"], "repeats": 2, "finals": "repeat"}
    output = folder / "out"
    assert main([str(write(folder, raw)), "--output", str(output), "--quiet"]) == 0
    return output


def test_worst_class_is_the_lowest_recall_of_the_validation_confusion_matrix() -> None:
    rng = np.random.default_rng(3)
    for classes in (2, 3, 5):
        targets, predictions = rng.integers(0, classes, 300), rng.integers(0, classes, 300)
        targets[targets == classes - 1] = 0  # a class absent from validation is not a class of its minimum
        confusion = np.zeros((classes, classes), dtype=int)
        for t, p in zip(targets, predictions, strict=True):
            confusion[t, p] += 1
        recalls = [confusion[c, c] / confusion[c].sum() for c in range(classes) if confusion[c].sum()]
        groups = rng.integers(0, 2, 300)
        assert math.isclose(val_worst_class(targets, predictions, groups, kind="bias"), min(recalls), abs_tol=1e-15)
        assert val_worst_class(targets, predictions, 1 - groups, kind="group") == min(recalls)  # groups not read
    assert math.isnan(
        val_worst_class(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([]), kind="")
    )
    one = np.array([1, 1, 1])
    assert val_worst_class(one, np.array([1, 0, 1]), one, kind="bias") == pytest.approx(2 / 3)


def test_every_repeat_picks_its_own_trial_under_each_rule(repeated: Path) -> None:
    search = pd.read_csv(repeated / SEARCH_CSV)
    assert len(search) == 8 and sorted(set(zip(search["repeat"], search["seed"], strict=True))) == [(0, 0), (1, 1)]
    assert {"test:accuracy", "test:worst_group_accuracy", "val_worst_class"} <= set(search.columns)
    picks = json.loads((repeated / SELECTION_FILE).read_text(encoding="utf-8"))
    assert list(picks) == list(RULES)
    for rule in RULES:
        assert found_picks(picks, rule) == recomputed_choice(search, rule)
        assert set(found_picks(picks, rule)) == {(m, "all", r) for m in ("supcon", "contex") for r in ("0", "1")}
        assert select(repeated, rule) == picks[rule]
    assert sorted(path.name for path in (repeated / "runs").iterdir()) == sorted(search["run_id"])  # none retrained


def test_paired_intervals_run_over_the_repeats(repeated: Path) -> None:
    picks = json.loads((repeated / SELECTION_FILE).read_text(encoding="utf-8"))
    table = pd.read_csv(repeated / RESULTS_CSV)
    comparisons = pd.read_csv(repeated / COMPARISONS_FILE)
    assert set(comparisons["finals"]) == {"repeat"}
    for rule in RULES:
        values = {}
        for method in ("supcon", "contex"):
            for repeat, seed in (("0", 0), ("1", 1)):
                run_id = picks[rule][method]["all"][repeat]["run_id"]
                rows = table[(table["run_id"] == run_id) & (table["selection"] == rule)]
                rows = rows[(rows["readout"] == "linear") & (rows["metric"] == "accuracy")]
                assert len(rows) == 1 and int(rows["seed"].iloc[0]) == seed
                values[(method, repeat)] = float(rows["value"].iloc[0])
        differences = [values[("contex", r)] - values[("supcon", r)] for r in ("0", "1")]
        mean = float(np.mean(differences))
        half = stats.t.ppf(0.975, 1) * np.std(differences, ddof=1) / math.sqrt(2)
        row = comparisons[
            (comparisons["selection"] == rule)
            & (comparisons["readout"] == "linear")
            & (comparisons["metric"] == "accuracy")
        ]
        assert len(row) == 1 and int(row["n_seeds"].iloc[0]) == 2
        assert row["mean_difference"].iloc[0] == pytest.approx(mean, abs=1e-12)
        assert row["ci_low"].iloc[0] == pytest.approx(mean - half, abs=1e-12)
        assert row["ci_high"].iloc[0] == pytest.approx(mean + half, abs=1e-12)


def test_the_paired_view_is_recomputed_from_search_csv(repeated: Path) -> None:
    search = pd.read_csv(repeated / SEARCH_CSV)
    paired = pd.read_csv(repeated / PAIRED_TRIALS_FILE)
    assert set(paired["method"]) == {"contex"} and set(paired["baseline"]) == {"supcon"}
    for metric, higher in (("test:accuracy", True), ("test:demographic_parity_difference", False), ("oracle", True)):
        mine = search[search["method"] == "contex"].set_index(["repeat", "trial"])
        theirs = search[search["method"] == "supcon"].set_index(["repeat", "trial"])
        assert (mine["temperature"] == theirs["temperature"]).all()  # the trials are shared configurations
        differences = (mine[metric] - theirs[metric]).to_numpy()
        row = paired[paired["metric"] == metric].iloc[0]
        oriented = differences if higher else -differences
        assert int(row["n_trials"]) == 4
        assert row["median"] == pytest.approx(float(np.median(differences)), abs=1e-12)
        assert row["win_share"] == pytest.approx(float(np.mean(oriented > 0)), abs=1e-12)
        worst, best = differences[np.argmin(oriented)], differences[np.argmax(oriented)]
        assert row["worst"] == pytest.approx(worst, abs=1e-12) and row["best"] == pytest.approx(best, abs=1e-12)


def test_the_report_labels_repeated_searches_and_shows_the_paired_view(repeated: Path) -> None:
    page = (repeated / REPORT_FILE).read_text(encoding="utf-8")
    assert "repeated searches, each repeat&#x27;s pick one result" in page
    assert "all, repeat 1" in page  # the trial-score figure's menu
    assert '<th class="text">median difference</th>' in page and '<th class="text">wins</th>' in page
    assert "oracle (test, upper bound), %" in page and "accuracy (%), test" in page


def test_a_random_search_shares_no_trial_so_its_paired_view_is_empty(tmp_path: Path) -> None:
    from ceco_fair.results.trials import paired_trials

    rows = [
        {"method": "a", "condition": "all", "repeat": 0, "trial": 1, "temperature": 0.1, "test:accuracy": 0.5},
        {"method": "b", "condition": "all", "repeat": 0, "trial": 1, "temperature": 0.2, "test:accuracy": 0.7},
    ]
    assert paired_trials(rows, "a").empty
    rows[1]["temperature"] = 0.1
    table = paired_trials(rows, "a")
    assert table["median"].tolist() == pytest.approx([0.2]) and table["win_share"].tolist() == [1.0]
