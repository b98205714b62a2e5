"""Hyper-parameter search and selection on validation: the protocol section, the rules, the outputs."""

from __future__ import annotations

import json
import math
import zlib
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


def test_random_sampler_keeps_the_earlier_draws_trial_zero_is_the_protocol_and_methods_draw_apart() -> None:
    raw = search_protocol()
    raw["search"] = {**raw["search"], "sampler": "random"}
    first = parse_protocol(raw, check_data=False)
    runs = {run.run_id: run for run in first.grid()}
    assert set(runs) == {f"{m}-trial{t}-seed0" for m in ("supcon", "contex") for t in (0, 1)}
    assert dict(runs["contex-trial0-seed0"].values) == {
        "train.optimizer.lr": 0.001,
        "temperature": 0.1,
        "contex.label_weight": 0.5,
    }
    assert dict(runs["supcon-trial0-seed0"].values) == {"train.optimizer.lr": 0.001, "temperature": 0.1}
    drawn = runs["contex-trial1-seed0"]
    # the generator of protocols written before the stratified sampler: (seed, crc32(label), trial, crc32(key))
    rng = np.random.default_rng([0, zlib.crc32(b"contex"), 1, zlib.crc32(b"contex.label_weight")])
    assert drawn.values["contex.label_weight"] == rng.uniform(0.25, 0.75)
    assert drawn.values["train.optimizer.lr"] != runs["supcon-trial1-seed0"].values["train.optimizer.lr"]


def test_stratified_draws_are_shared_by_trial_and_every_choice_is_tried() -> None:
    trials = 7
    raw = search_protocol(methods=[{"name": "supcon"}, {"name": "contex"}, {"name": "simclr"}])
    raw["search"] = {**raw["search"], "trials": trials}
    protocol = parse_protocol(raw, check_data=False)
    again = parse_protocol(raw, check_data=False)
    assert [(r.run_id, dict(r.values)) for r in protocol.grid()] == [(r.run_id, dict(r.values)) for r in again.grid()]
    runs = {run.run_id: run for run in protocol.grid()}
    own = []
    for trial in range(trials):
        supcon, contex = runs[f"supcon-trial{trial}-seed0"], runs[f"contex-trial{trial}-seed0"]
        simclr = runs[f"simclr-trial{trial}-seed0"]
        for key in ("train.optimizer.lr", "temperature"):  # shared: one draw per trial, every method that takes it
            assert supcon.values[key] == contex.values[key] == simclr.values[key]
        assert "contex.label_weight" not in supcon.values and 0.25 <= contex.values["contex.label_weight"] <= 0.75
        assert contex.method.config.options["label_weight"] == contex.values["contex.label_weight"]
        assert protocol.for_run(contex).train.optimizer.lr == contex.values["train.optimizer.lr"]
        own.append(contex.values["contex.label_weight"])
    temperatures = [runs[f"supcon-trial{t}-seed0"].values["temperature"] for t in range(trials)]
    counts = sorted(temperatures.count(value) for value in (0.05, 0.1, 0.2))
    assert counts == [2, 2, 3]  # floor(7/3) or ceil(7/3) each
    # Latin hypercube: one learning rate in each of the 7 equal-probability strata of the log range
    strata = sorted(
        int(7 * (math.log(runs[f"contex-trial{t}-seed0"].values["train.optimizer.lr"]) - math.log(3e-4)) / math.log(10))
        for t in range(trials)
    )
    assert strata == list(range(trials))
    assert sorted(int(7 * (w - 0.25) / 0.5) for w in own) == list(range(trials))
    # a method added or removed changes no other method's draws; another search seed changes them
    fewer = parse_protocol(search_protocol(methods=[{"name": "contex"}]) | {"search": raw["search"]}, check_data=False)
    assert {r.run_id: dict(r.values) for r in fewer.grid()} == {
        run_id: dict(run.values) for run_id, run in runs.items() if run_id.startswith("contex")
    }
    reseeded = parse_protocol(raw | {"search": {**raw["search"], "seed": 1}}, check_data=False)
    assert [dict(r.values) for r in reseeded.grid()] != [dict(r.values) for r in protocol.grid()]


@pytest.mark.parametrize(("trials", "choices"), [(1, 3), (2, 3), (3, 3), (5, 2), (6, 4), (10, 3), (4, 5)])
def test_each_choice_value_gets_floor_or_ceil_of_the_trials(trials: int, choices: int) -> None:
    from ceco_fair.runner.search import Distribution

    for seed in range(5):
        drawn = Distribution("choice", tuple(range(choices))).stratified(trials, np.random.default_rng(seed))
        counts = [drawn.count(value) for value in range(choices)]
        assert sum(counts) == trials and set(counts) <= {trials // choices, -(-trials // choices)}


def test_repeats_draw_with_their_own_seed_and_train_at_their_own_seed() -> None:
    raw = search_protocol(seeds=[3, 5, 8])
    raw["search"] = {**raw["search"], "repeats": 3}
    protocol = parse_protocol(raw, check_data=False)
    assert protocol.search is not None and protocol.search.finals == "repeat"
    grid = protocol.grid()
    assert sorted({(run.repeat, run.seed) for run in grid}) == [(0, 3), (1, 5), (2, 8)]
    values = {(run.repeat, run.trial): run.values["train.optimizer.lr"] for run in grid if run.method.label == "supcon"}
    assert values[(0, 0)] != values[(1, 0)] != values[(2, 0)]
    assert protocol.final_grid({"val_accuracy": {"supcon": {"all": {"0": {"trial": 1}}}}}) == []


def test_a_method_scoped_key_may_name_a_label_with_dots() -> None:
    raw = search_protocol(methods=[{"name": "supcon"}, {"name": "contex", "label": "ConTeX (tau=0.2)"}])
    raw["search"] = {"trials": 2, "space": {"ConTeX (tau=0.2).label_weight": {"uniform": [0.25, 0.75]}}}
    runs = {run.run_id: run for run in parse_protocol(raw, check_data=False).grid()}
    drawn = runs["ConTeX (tau=0.2)-trial1-seed0"]
    assert drawn.method.config.options["label_weight"] == drawn.values["ConTeX (tau=0.2).label_weight"]
    assert not runs["supcon-trial1-seed0"].values


def test_the_subgroup_baselines_options_are_searched_and_checked_like_loss_arguments() -> None:
    raw = search_protocol(methods=[{"name": "groupdro"}, {"name": "jtt", "stage_one_epochs": 1}])
    raw["train"] = {**raw["train"], "epochs": 3}
    raw["search"] = {
        "trials": 4,
        "sampler": "random",
        "space": {"groupdro.eta": {"log_uniform": [1.0e-3, 1.0e-1]}, "jtt.upweight": {"int": [1, 100]}},
    }
    runs = {run.run_id: run for run in parse_protocol(raw, check_data=False).grid()}
    assert dict(runs["groupdro-trial0-seed0"].values) == {"groupdro.eta": 0.01}
    assert dict(runs["jtt-trial0-seed0"].values) == {"jtt.upweight": 20}
    for trial in (1, 2, 3):
        eta = runs[f"groupdro-trial{trial}-seed0"]
        assert 1.0e-3 <= eta.values["groupdro.eta"] <= 1.0e-1
        assert eta.method.config.options["eta"] == eta.values["groupdro.eta"]
        assert 1.0 <= runs[f"jtt-trial{trial}-seed0"].method.config.options["upweight"] <= 100.0
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
        "val_accuracy": {"supcon": {"all": {"0": {"trial": 1}}}, "contex": {"all": {"0": {"trial": 0}}}},
        "val_worst_group": {"supcon": {"all": {"0": {"trial": 1}}}, "contex": {"all": {"0": {"trial": 1}}}},
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
    assert ", ".join(RULES) in printed and not output.exists()
    table = printed.split("draws (stratified sampler")[1].splitlines()
    header = table[1].split()
    assert header == ["repeat", "trial", "temperature", "train.optimizer.lr", "contex.label_weight"]
    assert len(table) == 2 + 2 + 1  # caption, header, two trials, the closing line


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
    ({"space": {"temperature": {"uniform": [-1.0, 0.5]}}}, "search.space: trial "),
    ({"repeats": 0}, "search.repeats: expected at least 1, got 0"),
    ({"repeats": 1.5}, "search.repeats: expected an integer number of searches, got 1.5"),
    ({"repeats": "2"}, "search.repeats: expected an integer number of searches, got '2'"),
    ({"repeats": 3}, "search.repeats: 3 repeats need 3 seeds"),
    ({"sampler": "sobol"}, "search.sampler: unknown sampler 'sobol'; expected one of stratified, random"),
    ({"finals": "retrain"}, "search.finals: unknown mode 'retrain'; expected one of repeat, reseed"),
    ({"finals": "repeat"}, "search.finals: 'repeat' with repeats: 1 uses only seed 0 of seeds [0, 1]; set"),
    ({"finals": "reseed", "repeats": 2}, "search.finals: 'reseed' retrains the pick of one search, but repeats is 2"),
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


def recomputed_choice(search: pd.DataFrame, rule: str) -> dict[tuple[str, str, str], int]:
    """Each (method, condition, repeat)'s best trial under ``rule`` from ``search.csv``, ties to the lower trial."""
    best: dict[tuple[str, str, str], tuple[float, int]] = {}
    for row in search.to_dict("records"):
        key = (str(row["method"]), str(row["condition"]), str(row["repeat"]))
        if math.isfinite(row[rule]) and (key not in best or (-row[rule], row["trial"]) < best[key]):
            best[key] = (-row[rule], int(row["trial"]))
    return {key: trial for key, (_, trial) in best.items()}


def found_picks(picks: dict[str, Any], rule: str) -> dict[tuple[str, str, str], int]:
    return {(m, c, r): p["trial"] for m, by in picks[rule].items() for c, rs in by.items() for r, p in rs.items()}


def test_each_rule_choice_is_recomputed_from_search_csv(searched: Path) -> None:
    search = pd.read_csv(searched / SEARCH_CSV)
    assert len(search) == 4 and set(search["phase"]) == {"search"}
    assert {"train.optimizer.lr", "temperature", "contex.label_weight", *RULES} <= set(search.columns)
    picks = json.loads((searched / SELECTION_FILE).read_text(encoding="utf-8"))
    assert list(picks) == list(RULES)
    for rule in RULES:
        assert found_picks(picks, rule) == recomputed_choice(search, rule)
        assert select(searched, rule) == picks[rule]


def test_final_runs_are_the_picks_at_every_seed_once_and_tables_name_their_rule(searched: Path) -> None:
    picks = json.loads((searched / SELECTION_FILE).read_text(encoding="utf-8"))
    chosen = {(m, p["0"]["trial"]) for by_method in picks.values() for m, by in by_method.items() for p in by.values()}
    runs = {path.name for path in (searched / "runs").iterdir()}
    finals = {f"{m}-trial{t}-seed1" for m, t in chosen}
    assert runs == {f"{m}-trial{t}-seed0" for m in ("supcon", "contex") for t in (0, 1)} | finals
    record = json.loads((run_dir(searched, sorted(finals)[0]) / RUN_FILE).read_text(encoding="utf-8"))
    assert record["phase"] == "final" and record["trial"] in (0, 1) and "train.optimizer.lr" in record["values"]
    assert set(record["validation"]) == {"val_accuracy", "val_worst_class", "val_worst_group"}
    table = pd.read_csv(searched / RESULTS_CSV)
    assert set(table["selection"]) == {"search", *RULES}
    for rule in RULES:
        rows = table[(table["selection"] == rule) & (table["readout"] == "linear") & (table["metric"] == "accuracy")]
        assert sorted(rows["seed"]) == [0, 0, 1, 1]
        expected = {f"{m}-trial{picks[rule][m]['all']['0']['trial']}-seed{s}" for m in picks[rule] for s in (0, 1)}
        assert set(rows["run_id"]) == expected
    comparisons = pd.read_csv(searched / COMPARISONS_FILE)
    assert list(dict.fromkeys(comparisons["selection"])) == list(RULES) and set(comparisons["finals"]) == {"reseed"}
    assert (comparisons.groupby("selection")["n_seeds"].max() == 2).all()
    page = (searched / REPORT_FILE).read_text(encoding="utf-8")
    assert 'id="selection"' in page and "an upper bound, not a result" in page
    assert page.count("Selection: val_accuracy:") == 1 and page.count("Selection: oracle") == 1
    assert "reseed: one search&#x27;s pick retrained at every seed" in page


def test_validation_selections_never_read_the_test_labels(searched: Path, tmp_path: Path) -> None:
    flipped = search_protocol(seeds=[0])
    flipped["data"] = {**flipped["data"], "flip_test": True}
    output = tmp_path / "flipped"
    assert main([str(write(tmp_path, flipped)), "--output", str(output), "--quiet"]) == 0
    before, after = (pd.read_csv(folder / SEARCH_CSV).set_index("run_id") for folder in (searched, output))
    assert not np.allclose(before["oracle"], after["oracle"])  # the test labels did change
    validation = ["val_accuracy", "val_worst_class", "val_worst_group"]
    pd.testing.assert_frame_equal(before[validation], after[validation])
    for rule in validation:
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
