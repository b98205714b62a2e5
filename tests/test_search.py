"""Hyper-parameter search and selection on validation: the protocol section, the rules, the outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from tiny_protocol import tiny_protocol_dict

from ceco_fair import select
from ceco_fair.errors import CecoFairError
from ceco_fair.results.layout import (
    COMPARISONS_FILE,
    REPORT_FILE,
    RESULTS_CSV,
    RUN_FILE,
    SEARCH_CSV,
    SELECTION_FILE,
    run_dir,
)
from ceco_fair.results.selection import RULES, pick, val_accuracy, val_worst_group
from ceco_fair.run import main
from ceco_fair.runner.protocol import parse_protocol

SPACE = {
    "train.optimizer.lr": {"log_uniform": [3.0e-4, 3.0e-3]},
    "temperature": {"choice": [0.05, 0.1, 0.2]},
    "contex.label_weight": {"uniform": [0.25, 0.75]},
}


def search_protocol(**overrides: Any) -> dict[str, Any]:
    """Two methods on a small user dataset with a validation split, 2 trials, every rule."""
    protocol = tiny_protocol_dict(
        methods=[{"name": "supcon"}, {"name": "contex", "temperature": 0.1}],
        train={"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 2},
        probe={"epochs": 2, "batch_size": 512},
        eval={"n_boot": 0, "projection_points": 40},
        seeds=[0, 1],
    )
    protocol["data"] = {"dataset": "user_datasets:ValidatedSquares", "n": 96}
    protocol["search"] = {"trials": 2, "seed": 0, "space": SPACE, "select": list(RULES)}
    for key, value in overrides.items():
        protocol[key] = value
    return protocol


def write(tmp_path: Path, raw: dict[str, Any], name: str = "protocol.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished search protocol (report included), read by several tests."""
    folder = tmp_path_factory.mktemp("search")
    output = folder / "out"
    assert main([str(write(folder, search_protocol(report=True))), "--output", str(output), "--quiet"]) == 0
    return output


# --- the protocol section ---------------------------------------------------------------------


def test_draws_are_reproducible_trial_zero_is_the_protocol_and_methods_draw_apart() -> None:
    first = parse_protocol(search_protocol(), check_data=False)
    again = parse_protocol(search_protocol(), check_data=False)
    assert [(r.run_id, dict(r.values)) for r in first.grid()] == [(r.run_id, dict(r.values)) for r in again.grid()]
    runs = {run.run_id: run for run in first.grid()}
    assert set(runs) == {f"{m}-trial{t}-seed0" for m in ("supcon", "contex") for t in (0, 1)}
    assert dict(runs["contex-trial0-seed0"].values) == {
        "train.optimizer.lr": 0.001,
        "temperature": 0.1,
        "contex.label_weight": 0.5,
    }
    assert dict(runs["supcon-trial0-seed0"].values) == {"train.optimizer.lr": 0.001, "temperature": 0.1}
    drawn = runs["contex-trial1-seed0"]
    assert 3.0e-4 <= drawn.values["train.optimizer.lr"] <= 3.0e-3
    assert 0.25 <= drawn.values["contex.label_weight"] <= 0.75
    assert drawn.method.config.loss_kwargs["label_weight"] == drawn.values["contex.label_weight"]
    trained = first.for_run(drawn)
    assert trained.train.optimizer.lr == drawn.values["train.optimizer.lr"]
    # a third method changes no other method's draws; another search seed changes them
    more = search_protocol(methods=[{"name": "supcon"}, {"name": "contex", "temperature": 0.1}, {"name": "simclr"}])
    extended = {run.run_id: dict(run.values) for run in parse_protocol(more, check_data=False).grid()}
    assert extended["contex-trial1-seed0"] == dict(drawn.values)
    reseeded = search_protocol()
    reseeded["search"] = {**reseeded["search"], "seed": 1}
    other = {run.run_id: dict(run.values) for run in parse_protocol(reseeded, check_data=False).grid()}
    assert other["contex-trial1-seed0"] != dict(drawn.values)


def test_a_method_scoped_key_may_name_a_label_with_dots() -> None:
    raw = search_protocol(methods=[{"name": "supcon"}, {"name": "contex", "label": "ConTeX (tau=0.2)"}])
    raw["search"] = {"trials": 2, "space": {"ConTeX (tau=0.2).label_weight": {"uniform": [0.25, 0.75]}}}
    runs = {run.run_id: run for run in parse_protocol(raw, check_data=False).grid()}
    drawn = runs["ConTeX (tau=0.2)-trial1-seed0"]
    assert drawn.method.config.loss_kwargs["label_weight"] == drawn.values["ConTeX (tau=0.2).label_weight"]
    assert not runs["supcon-trial1-seed0"].values


def test_the_subgroup_baselines_options_are_searched_and_checked_like_loss_arguments() -> None:
    raw = search_protocol(methods=[{"name": "groupdro"}, {"name": "jtt", "stage_one_epochs": 1}])
    raw["train"] = {**raw["train"], "epochs": 3}
    raw["search"] = {
        "trials": 4,
        "space": {"groupdro.eta": {"log_uniform": [1.0e-3, 1.0e-1]}, "jtt.upweight": {"int": [1, 100]}},
    }
    runs = {run.run_id: run for run in parse_protocol(raw, check_data=False).grid()}
    assert dict(runs["groupdro-trial0-seed0"].values) == {"groupdro.eta": 0.01}
    assert dict(runs["jtt-trial0-seed0"].values) == {"jtt.upweight": 20}
    for trial in (1, 2, 3):
        eta = runs[f"groupdro-trial{trial}-seed0"]
        assert 1.0e-3 <= eta.values["groupdro.eta"] <= 1.0e-1
        assert eta.method.config.loss_kwargs["eta"] == eta.values["groupdro.eta"]
        assert 1.0 <= runs[f"jtt-trial{trial}-seed0"].method.config.loss_kwargs["upweight"] <= 100.0
    raw["search"]["space"] = {"jtt.stage_one_epochs": {"int": [1, 3]}}  # 3 leaves no epoch for stage two
    raw["search"]["trials"] = 8
    with pytest.raises(CecoFairError, match=r"stage_one_epochs: expected fewer than train\.epochs"):
        parse_protocol(raw, check_data=False)
    raw["search"]["space"] = {"resample.eta": {"uniform": [0.1, 0.2]}}
    with pytest.raises(CecoFairError, match=r"resample\.eta"):
        parse_protocol(raw | {"methods": [{"name": "resample"}]}, check_data=False)


def test_final_grid_runs_each_picked_trial_once_at_the_later_seeds() -> None:
    protocol = parse_protocol(search_protocol(seeds=[0, 1, 2]), check_data=False)
    picks = {
        "val_accuracy": {"supcon": {"all": {"trial": 1}}, "contex": {"all": {"trial": 0}}},
        "val_worst_group": {"supcon": {"all": {"trial": 1}}, "contex": {"all": {"trial": 1}}},
    }
    final = protocol.final_grid(picks)
    assert sorted(run.run_id for run in final) == sorted(
        f"{name}-seed{seed}" for name in ("supcon-trial1", "contex-trial0", "contex-trial1") for seed in (1, 2)
    )
    searched = {run.run_id: run for run in protocol.grid()}
    for run in final:
        assert run.phase == "final"
        assert dict(run.values) == dict(searched[run.run_id.replace(f"seed{run.seed}", "seed0")].values)


def test_dry_run_lists_the_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out"
    assert main([str(write(tmp_path, search_protocol())), "--output", str(output), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    grid = parse_protocol(search_protocol(), check_data=False).grid()
    for run in grid:
        line = next(line for line in printed.splitlines() if run.run_id in line)
        assert f"train.optimizer.lr={run.values['train.optimizer.lr']:.4g}" in line
    assert "val_accuracy, val_worst_group, oracle" in printed and not output.exists()


def test_biased_mnist_validation_is_carved_from_the_training_digits_at_the_training_rho() -> None:
    from ceco_fair.runner.experiment import build_split

    protocol = parse_protocol(
        {**tiny_protocol_dict(), "search": {"trials": 1, "select": ["val_accuracy"]}}, check_data=False
    )
    assert protocol.data["val_fraction"] == 0.1
    run = protocol.grid()[0]
    train, valid = build_split(protocol, run, "train"), build_split(protocol, run, "valid")
    train_rows, valid_rows = set(train.source_rows.tolist()), set(valid.source_rows.tolist())  # type: ignore[attr-defined]
    assert not train_rows & valid_rows and len(valid_rows) == 400 and len(train_rows) == 3600
    aligned = float((valid.sensitive == valid.targets).float().mean())  # type: ignore[attr-defined]
    assert valid.rho == 0.99 and aligned > 0.95  # type: ignore[attr-defined]


BAD_SEARCHES: list[tuple[dict[str, Any], str]] = [
    ({"space": {"temperature": {"gauss": [0, 1]}}}, "search.space.temperature: unknown distribution 'gauss'"),
    ({"space": {"temperature": {"uniform": [0.2, 0.2]}}}, "empty or reversed"),
    ({"space": {"temperature": {"uniform": [0.3, 0.1]}}}, "empty or reversed"),
    ({"space": {"train.optimizer.lr": {"log_uniform": [0.0, 0.1]}}}, "log-uniform range needs bounds > 0"),
    ({"space": {"temperature": {"choice": []}}}, "non-empty list"),
    ({"trials": 0}, "search.trials: expected at least 1"),
    ({"space": {"margin": {"uniform": [0, 1]}}}, "search.space.margin: 'margin' is not an argument of any method"),
    ({"space": {"supcon.label_weight": {"uniform": [0, 1]}}}, "not an argument of method 'supcon'"),
    ({"space": {"train.optimizer.rate": {"uniform": [0, 1]}}}, "'rate' is not a key of train"),
    ({"space": {"simclr.temperature": {"uniform": [0.1, 1]}}}, "'simclr' is neither a method label"),
    ({"select": ["val_acc"]}, "search.select[0]: unknown selection rule 'val_acc'"),
    ({"space": {"temperature": {"uniform": [-1.0, 0.5]}}}, "search.space: trial 1 of"),
    ({"space": {"temperature": {"choice": [0.1, -2.0]}}}, "search.space.temperature: -2.0 for supcon"),
    ({"space": {"train.epochs": {"choice": [1, "two"]}}}, "search.space.train.epochs: 'two' for supcon"),
]


@pytest.mark.parametrize(("search", "message"), BAD_SEARCHES)
def test_bad_search_is_one_error_line_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], search: dict[str, Any], message: str
) -> None:
    raw = search_protocol()
    raw["search"] = {**raw["search"], **search}
    output = tmp_path / "out"
    assert main([str(write(tmp_path, raw)), "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error, error
    assert not output.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dataset": "user_datasets:Squares"}, "declares no validation split"),
        ({"dataset": "user_datasets:TargetOnlySquares"}, "val_worst_group needs sensitive values"),
        ({"dataset": "biased_mnist", "source": "embedded", "val_fraction": 0}, "data.val_fraction is 0"),
    ],
)
def test_a_search_needs_a_validation_split_with_the_labels_its_rules_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], message: str
) -> None:
    output = tmp_path / "out"
    assert main([str(write(tmp_path, search_protocol(data=data))), "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error, error
    assert not output.exists()


# --- the rules ----------------------------------------------------------------------------------


def test_validation_rules_match_a_loop_over_cells() -> None:
    rng = np.random.default_rng(0)
    targets, predictions, groups = rng.integers(0, 3, 200), rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    groups[targets == 2] = 1  # some cells empty
    cells: dict[tuple[int, int], list[bool]] = {}
    for t, p, g in zip(targets, predictions, groups, strict=True):
        cells.setdefault((int(t), int(g)), []).append(bool(t == p))
    cell_accuracy = [sum(v) / len(v) for v in cells.values()]
    correct = sum(int(t == p) for t, p in zip(targets, predictions, strict=True))
    assert math.isclose(val_accuracy(targets, predictions, groups, kind="group"), correct / 200)
    assert math.isclose(val_worst_group(targets, predictions, groups, kind="group"), min(cell_accuracy))
    unbiased = sum(cell_accuracy) / len(cell_accuracy)
    assert math.isclose(val_worst_group(targets, predictions, groups, kind="bias"), unbiased)


def test_pick_takes_the_best_score_and_ties_go_to_the_lower_trial() -> None:
    rows = [
        {"trial": 2, "val_accuracy": 0.8},
        {"trial": 1, "val_accuracy": 0.8},
        {"trial": 0, "val_accuracy": 0.7},
        {"trial": 3, "val_accuracy": float("nan")},
    ]
    chosen = pick(rows, "val_accuracy")
    assert chosen is not None and chosen["trial"] == 1
    assert pick([{"trial": 0}], "val_accuracy") is None


# --- a search, end to end -----------------------------------------------------------------------


def recomputed_choice(search: pd.DataFrame, rule: str) -> dict[tuple[str, str], int]:
    """Each (method, condition)'s best trial under ``rule`` from ``search.csv``, ties to the lower trial."""
    ranked = search.assign(_score=-search[rule]).sort_values(["method", "condition", "_score", "trial"])
    first = ranked.groupby(["method", "condition"], sort=False).head(1)
    return {(str(r.method), str(r.condition)): int(r.trial) for r in first.itertuples()}


def test_each_rule_choice_is_recomputed_from_search_csv(searched: Path) -> None:
    search = pd.read_csv(searched / SEARCH_CSV)
    assert len(search) == 4 and set(search["phase"]) == {"search"}
    assert {"train.optimizer.lr", "temperature", "contex.label_weight", *RULES} <= set(search.columns)
    picks = json.loads((searched / SELECTION_FILE).read_text(encoding="utf-8"))
    assert list(picks) == list(RULES)
    for rule in RULES:
        found = {(m, c): pick["trial"] for m, by in picks[rule].items() for c, pick in by.items()}
        assert found == recomputed_choice(search, rule)
        assert {m: {c: p["values"] for c, p in by.items()} for m, by in select(searched, rule).items()} == {
            m: {c: p["values"] for c, p in by.items()} for m, by in picks[rule].items()
        }


def test_final_runs_are_the_picks_at_every_seed_once_and_tables_name_their_rule(searched: Path) -> None:
    picks = json.loads((searched / SELECTION_FILE).read_text(encoding="utf-8"))
    chosen = {(m, p["trial"]) for by_method in picks.values() for m, by in by_method.items() for p in by.values()}
    runs = {path.name for path in (searched / "runs").iterdir()}
    finals = {f"{m}-trial{t}-seed1" for m, t in chosen}
    assert runs == {f"{m}-trial{t}-seed0" for m in ("supcon", "contex") for t in (0, 1)} | finals
    record = json.loads((run_dir(searched, sorted(finals)[0]) / RUN_FILE).read_text(encoding="utf-8"))
    assert record["phase"] == "final" and record["trial"] in (0, 1) and "train.optimizer.lr" in record["values"]
    assert set(record["validation"]) == {"val_accuracy", "val_worst_group"}
    table = pd.read_csv(searched / RESULTS_CSV)
    assert set(table["selection"]) == {"search", *RULES}
    for rule in RULES:
        rows = table[(table["selection"] == rule) & (table["readout"] == "linear") & (table["metric"] == "accuracy")]
        assert sorted(rows["seed"]) == [0, 0, 1, 1]
        expected = {f"{m}-trial{picks[rule][m]['all']['trial']}-seed{s}" for m in picks[rule] for s in (0, 1)}
        assert set(rows["run_id"]) == expected
    comparisons = pd.read_csv(searched / COMPARISONS_FILE)
    assert list(dict.fromkeys(comparisons["selection"])) == list(RULES)
    assert (comparisons.groupby("selection")["n_seeds"].max() == 2).all()
    page = (searched / REPORT_FILE).read_text(encoding="utf-8")
    assert 'id="selection"' in page and "an upper bound, not a result" in page
    assert page.count("Selection: val_accuracy") == 1 and page.count("Selection: oracle") == 1


def test_validation_selections_never_read_the_test_labels(searched: Path, tmp_path: Path) -> None:
    flipped = search_protocol(seeds=[0])
    flipped["data"] = {**flipped["data"], "flip_test": True}
    output = tmp_path / "flipped"
    assert main([str(write(tmp_path, flipped)), "--output", str(output), "--quiet"]) == 0
    before, after = (pd.read_csv(folder / SEARCH_CSV).set_index("run_id") for folder in (searched, output))
    assert not np.allclose(before["oracle"], after["oracle"])  # the test labels did change
    pd.testing.assert_frame_equal(
        before[["val_accuracy", "val_worst_group"]], after[["val_accuracy", "val_worst_group"]]
    )
    for rule in ("val_accuracy", "val_worst_group"):
        assert select(searched, rule) == select(output, rule)


def test_select_refuses_an_unknown_rule_and_a_folder_without_a_search(searched: Path, tmp_path: Path) -> None:
    with pytest.raises(CecoFairError, match="unknown selection rule 'best'"):
        select(searched, "best")
    with pytest.raises(CecoFairError, match=r"search\.csv: not found"):
        select(tmp_path, "val_accuracy")


def test_a_killed_search_resumes_where_it_stopped(searched: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(searched, copy)
    picks = json.loads((copy / SELECTION_FILE).read_text(encoding="utf-8"))
    final = sorted(path for path in (copy / "runs").iterdir() if path.name.endswith("seed1"))
    killed = [run_dir(copy, "contex-trial1-seed0"), final[0]]
    for folder in killed:
        shutil.rmtree(folder)
    kept = {path.name: (path / RUN_FILE).stat().st_mtime_ns for path in (copy / "runs").iterdir()}
    protocol = write(tmp_path, search_protocol(report=True))
    assert main([str(protocol), "--output", str(copy), "--resume", "--quiet"]) == 0
    assert {path.name for path in (copy / "runs").iterdir()} == {path.name for path in (searched / "runs").iterdir()}
    assert all((copy / "runs" / name / RUN_FILE).stat().st_mtime_ns == stamp for name, stamp in kept.items())
    assert json.loads((copy / SELECTION_FILE).read_text(encoding="utf-8")) == picks


def test_summary_tables_name_their_rule_and_leave_out_the_trials(searched: Path) -> None:
    from ceco_fair.summary import summary_markdown

    text = summary_markdown(searched, ["accuracy", "worst_group_accuracy"])
    assert [line.split(":")[1].strip() for line in text.splitlines() if line.startswith("Selection:")] == list(RULES)
    assert "an upper bound, not a result" in text and "search" not in text.split("Selection:")[0]
