"""The run record: one writer, one strict reader, the folder's tables derived from it, one condition label."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ceco_fair.errors import DataError
from ceco_fair.results import layout
from ceco_fair.results.folder import finished_record, rebuild_folder, write_grid, write_results
from ceco_fair.results.record import (
    RecordError,
    RunRecord,
    condition_label,
    read_results,
    selections_of,
    tidy_rows,
)

ROOT = Path(__file__).resolve().parents[1]


def _record(**changes: Any) -> RunRecord:
    base = RunRecord(
        run_id="contex-rho0.9-seed1",
        method="contex",
        loss="contex",
        dataset="biased_mnist",
        metric_kind="bias",
        rho=0.9,
        seed=1,
        status="running",
        shard="1/2",
        host="h",
        device="cpu",
        facts={"target_name": "digit", "group_colours": ["red", "green"]},
    )
    return dataclasses.replace(base, **changes)


def test_the_record_starts_with_the_run_columns_and_the_origin() -> None:
    names = [field.name for field in dataclasses.fields(RunRecord)]
    assert tuple(names[: len(layout.RUN_COLUMNS)]) == layout.RUN_COLUMNS
    assert set(layout.RUN_ORIGIN_COLUMNS) <= set(names)


def test_a_complete_record_reads_back_as_written(tmp_path: Path) -> None:
    record = _record().finish({"accuracy": 0.75, "bias_conflicting_accuracy": None, "n": 3})
    folder = tmp_path / record.run_id
    record.write(folder)
    assert RunRecord.read(folder) == record
    assert json.loads((folder / layout.METRICS_FILE).read_text()) == {
        "accuracy": 0.75,
        "bias_conflicting_accuracy": None,
        "n": 3,
    }
    on_disk = json.loads((folder / layout.RUN_FILE).read_text())
    assert "metrics" not in on_disk and on_disk["status"] == "complete" and on_disk["target_name"] == "digit"


def test_the_other_read_outs_are_written_read_back_and_tidied(tmp_path: Path) -> None:
    readouts = {"balanced": {"accuracy": 0.625}, "head": {"accuracy": 0.5, "eo": None}}
    record = _record().finish({"accuracy": 0.75}, readouts)
    folder = tmp_path / record.run_id
    record.write(folder)
    assert json.loads((folder / layout.READOUTS_FILE).read_text()) == readouts
    assert RunRecord.read(folder) == record
    assert RunRecord.from_json(record.to_json(), folder / layout.RUN_FILE) == record
    rows = [(row["readout"], row["metric"], row["value"]) for row in tidy_rows([record])]
    assert rows == [
        ("linear", "accuracy", 0.75),
        ("balanced", "accuracy", 0.625),
        ("head", "accuracy", 0.5),
        ("head", "eo", None),
    ]
    record.finish({"accuracy": 0.5}).write(folder)  # measured again without them: no stale file
    assert not (folder / layout.READOUTS_FILE).exists() and RunRecord.read(folder).readouts == {}
    (folder / layout.RUN_FILE).write_text(json.dumps(record.to_json(metrics=False)))
    (folder / layout.READOUTS_FILE).write_text(json.dumps({"balanced": {"accuracy": "high"}}))
    with pytest.raises(RecordError, match=r"readouts\.json: balanced\.accuracy is 'high', expected a number"):
        RunRecord.read(folder)


def test_a_running_or_failed_record_has_no_metrics_file(tmp_path: Path) -> None:
    folder = tmp_path / "contex-rho0.9-seed1"
    _record().write(folder)
    assert not (folder / layout.METRICS_FILE).exists()
    assert RunRecord.read(folder) == _record()
    on_disk = json.loads((folder / layout.RUN_FILE).read_text())
    assert "error" not in on_disk and on_disk["target"] is None  # unset extras are left out, run columns are not
    failed = _record().fail("loss is nan at epoch 3")
    failed.write(folder)
    read = RunRecord.read(folder)
    assert (read.status, read.error, read.metrics) == ("failed", "loss is nan at epoch 3", {})


def test_a_complete_run_needs_its_metrics(tmp_path: Path) -> None:
    folder = tmp_path / "contex-rho0.9-seed1"
    _record().finish({"accuracy": 0.5}).write(folder)
    (folder / layout.METRICS_FILE).unlink()
    with pytest.raises(RecordError, match=r"contex-rho0\.9-seed1/metrics\.json: missing") as caught:
        RunRecord.read(folder)
    assert caught.value.path == folder / layout.METRICS_FILE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "done"}, r"run\.json: status is 'done', expected running or complete or failed or incomplete"),
        ({"seed": 1.5}, r"run\.json: seed is 1\.5, expected an integer or null"),
        ({"seed": True}, r"run\.json: seed is True, expected an integer or null"),
        ({"rho": "high"}, r"run\.json: rho is 'high', expected a number or null"),
        ({"sensitive": ["race", 3]}, r"run\.json: sensitive is \['race', 3\], expected a string or a list of strings"),
        ({"metric_kind": "other"}, r"run\.json: metric_kind is 'other', expected bias or group or null"),
        ({"method": 3}, r"run\.json: method is 3, expected a string"),
        ({"run_id": "elsewhere"}, r"run\.json: run_id is 'elsewhere', expected 'contex-rho0\.9-seed1', the name"),
        ({"phase": "tuning"}, r"run\.json: phase is 'tuning', expected search or final or null"),
        ({"trial": "2"}, r"run\.json: trial is '2', expected an integer or null"),
        ({"values": [0.1]}, r"run\.json: values is \[0\.1\], expected an object or null"),
        (
            {"validation": {"val_accuracy": "high"}},
            r"run\.json: validation is \{'val_accuracy': 'high'\}, expected an object whose values are each a number",
        ),
    ],
)
def test_a_malformed_run_json_names_its_file_and_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    folder = tmp_path / "contex-rho0.9-seed1"
    _record().write(folder)
    path = folder / layout.RUN_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(RecordError, match=message) as caught:
        RunRecord.read(folder)
    assert "\n" not in str(caught.value) and isinstance(caught.value, DataError)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"metrics\.json cannot be read: invalid JSON"),
        ("[0.5]", r"metrics\.json: the top level is \[0\.5\], expected an object of metric values"),
        ('{"accuracy": "high"}', r"metrics\.json: accuracy is 'high', expected a number or null"),
    ],
)
def test_a_malformed_metrics_json_names_its_file_and_metric(tmp_path: Path, text: str, message: str) -> None:
    folder = tmp_path / "contex-rho0.9-seed1"
    _record().finish({"accuracy": 0.5}).write(folder)
    (folder / layout.METRICS_FILE).write_text(text)
    with pytest.raises(RecordError, match=message):
        RunRecord.read(folder)


def test_a_run_json_without_status_is_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / layout.RUN_FILE).write_text('{"run_id": "a", "method": "ce"}')
    assert RunRecord.read(folder) == RunRecord("a", "ce", status="incomplete")


def test_a_search_run_records_its_phase_trial_values_and_scores(tmp_path: Path) -> None:
    search = _record(phase="search", trial=2, values={"temperature": 0.2, "train.optimizer.lr": 0.001})
    record = search.with_facts({"validation": {"val_accuracy": 0.5, "val_worst_group": None}}).finish({"accuracy": 1})
    folder = tmp_path / record.run_id
    record.write(folder)
    on_disk = json.loads((folder / layout.RUN_FILE).read_text())
    assert on_disk["phase"] == "search" and on_disk["trial"] == 2 and on_disk["values"]["temperature"] == 0.2
    assert "validation" not in record.facts and RunRecord.read(folder) == record
    assert "selection" not in on_disk  # set when the folder's tables are built, never in run.json


def test_a_run_json_from_before_the_search_fields_still_reads(tmp_path: Path) -> None:
    folder = tmp_path / "contex-rho0.9-seed1"
    _record().finish({"accuracy": 0.5}).write(folder)
    on_disk = json.loads((folder / layout.RUN_FILE).read_text())
    assert not {"phase", "trial", "values", "validation", "selection"} & set(on_disk)
    record = RunRecord.read(folder)
    assert (record.phase, record.trial, record.values, record.validation, record.selection) == (None,) * 5
    assert tidy_rows([record]) == [
        {**record.columns(), "selection": "fixed", "readout": "linear", "metric": "accuracy", "value": 0.5}
    ]


def test_a_run_picked_by_two_rules_has_a_row_under_each() -> None:
    record = _record(selection=["val_accuracy", "oracle"]).finish({"accuracy": 0.5})
    assert [row["selection"] for row in tidy_rows([record])] == ["val_accuracy", "oracle"]
    assert selections_of(record) == selections_of(record.to_json()) == ["val_accuracy", "oracle"]
    assert selections_of({"run_id": "a"}) == ["fixed"]


def test_with_facts_routes_known_fields_and_checks_them() -> None:
    record = RunRecord("a", "ce").with_facts({"seed": 3, "group_names": ["x"], "metrics": {"accuracy": 1.0}})
    assert record.seed == 3 and record.facts == {"group_names": ["x"]} and record.metrics == {}
    with pytest.raises(RecordError, match=r"run\.json: seed is '3', expected an integer or null"):
        RunRecord("a", "ce").with_facts({"seed": "3"})


def test_results_tables_are_the_records_of_the_finished_runs(tmp_path: Path) -> None:
    """rebuild_folder: finished records in grid order into results.json, one csv row per run × metric."""
    complete = _record(run_id="b", sensitive=["race", "age"]).finish({"accuracy": 0.5, "eo": 0.25})
    failed = _record(run_id="a", seed=2).fail("diverged")
    running = _record(run_id="c", seed=3)
    for record in (complete, failed, running):
        record.write(tmp_path / layout.RUNS_DIR / record.run_id)
    (tmp_path / layout.RUNS_DIR / "d").mkdir()  # claimed, not started
    write_grid(tmp_path, ["b", "c", "a", "d"])
    state = rebuild_folder(tmp_path)
    assert state.records == [complete, failed] and state.missing == ["c", "d"]
    assert read_results(tmp_path / layout.RESULTS_JSON) == [complete, failed]
    table = pd.read_csv(tmp_path / layout.RESULTS_CSV)
    assert list(table.columns) == list(layout.RESULTS_COLUMNS)
    assert table[["run_id", "sensitive", "metric", "value"]].values.tolist() == [
        ["b", "race+age", "accuracy", 0.5],
        ["b", "race+age", "eo", 0.25],
    ]
    assert tidy_rows([complete])[0] == {
        **complete.columns(),
        "selection": "fixed",
        "readout": "linear",
        "metric": "accuracy",
        "value": 0.5,
    }
    assert finished_record(tmp_path / layout.RUNS_DIR / "c") is None
    assert finished_record(tmp_path / layout.RUNS_DIR / "d") is None


def test_results_json_entries_are_parsed_by_the_same_parser(tmp_path: Path) -> None:
    write_results(tmp_path, [_record().finish({"accuracy": 0.5})])
    path = tmp_path / layout.RESULTS_JSON
    data = json.loads(path.read_text())
    data["runs"][0]["metrics"]["accuracy"] = [1]
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"results\.json: runs\[0\]\.metrics\.accuracy is \[1\], expected a number"):
        read_results(path)


@pytest.mark.parametrize(
    ("rho", "target", "sensitive", "label"),
    [
        (0.9, None, None, "rho=0.9"),
        (math.nan, "", "", "all"),
        (None, None, None, "all"),
        (None, "Attractive", "Male", "Attractive-vs-Male"),
        (None, "Young", ["Male", "Young"], "Young-vs-Male+Young"),
        (0.99, "gender", "race", "rho=0.99, gender-vs-race"),
    ],
)
def test_condition_label(rho: float | None, target: str | None, sensitive: Any, label: str) -> None:
    assert condition_label(rho, target, sensitive) == label


def test_the_published_comparisons_use_the_condition_label() -> None:
    """docs/study's comparisons.csv files name their conditions as the labeller does today."""
    for path in (ROOT / "docs/study/comparisons.csv", ROOT / "docs/study/colored/comparisons.csv"):
        comparisons = pd.read_csv(path)
        results = pd.read_csv(path.parent / layout.RESULTS_CSV)
        labels = {condition_label(rho, None, None) for rho in results["rho"]}
        assert set(comparisons["condition"]) == labels, path
