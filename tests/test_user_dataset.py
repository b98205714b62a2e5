"""A dataset from a module outside the package runs through a protocol, report included."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import user_datasets
from tiny_protocol import tiny_protocol_dict

from ceco_fair.metrics.specs import spec_of
from ceco_fair.report import load_results
from ceco_fair.results.layout import REPORT_FILE, RESULTS_CSV, RUN_FILE, run_dir
from ceco_fair.run import main


def user_protocol(data: dict[str, object], **overrides: object) -> dict[str, object]:
    """The tiny protocol on a user's dataset (``data`` replaces the default data section)."""
    return {**tiny_protocol_dict(**{**USER_PROTOCOL, **overrides}), "data": data}


USER_PROTOCOL: dict[str, object] = {
    "methods": [{"name": "supcon", "label": "SupCon (baseline)"}, {"name": "contex", "label": "ConTeX (tau=0.2)"}],
    "train": {"epochs": 1, "batch_size": 64, "max_batches_per_epoch": 2},
    "eval": {"n_boot": 20, "projection_points": 60, "confidence": 0.9},
    "report": True,
}


@pytest.mark.parametrize(
    ("data", "kind", "sections", "interval"),
    [
        # one seed: a group run's metrics keep their own 90% bootstrap interval (n_boot 20, confidence 0.9) ...
        ({"dataset": "user_datasets:Squares", "n": 160}, "group", ('id="fairness"',), "90% bootstrap, 1 run"),
        # ... a bias run's have none
        ({"dataset": "user_datasets:ShadedDigits", "rho": [0.9]}, "bias", ('id="bias"',), "1 run, no interval"),
    ],
)
def test_user_dataset_runs_end_to_end_with_its_report(
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    data: dict[str, object],
    kind: str,
    sections: tuple[str, ...],
    interval: str,
) -> None:
    user_datasets.Squares.checked.clear()
    output = tmp_path / "out"
    assert main([str(write_protocol(user_protocol(data))), "--output", str(output), "--quiet"]) == 0
    assert user_datasets.Squares.checked == ["train", "test"]
    table = pd.read_csv(output / RESULTS_CSV)
    assert (table["metric_kind"] == kind).all() and (table["dataset"] == data["dataset"]).all()
    assert set(table["loss"]) == {"supcon", "contex"}
    specs = [spec_of(name) for name in table["metric"]]
    assert all(spec is not None for spec in specs)
    kinds = {spec.kind for spec in specs if spec is not None and spec.name != "accuracy"}
    assert kinds == {kind, "representation"}
    page = (output / REPORT_FILE).read_text(encoding="utf-8")
    for section in sections:
        assert section in page
    other = 'id="bias"' if kind == "group" else 'id="fairness"'
    assert other not in page
    summary = page[page.index('class="summary"') :]
    summary = summary[: summary.index("</table>")]
    described = set(re.findall(r'<td class="text">([^<]*)</td>', summary))
    assert described == {interval}, described  # the interval policy of every row, not the caption
    results = load_results(output)
    assert set(results.runs["metric_kind"]) == {kind}
    assert set(results.runs["target_name"]) == {"square size"}
    first = results.runs["run_id"].iloc[0]
    assert '"sensitive_name": "tint"' in (run_dir(output, first) / RUN_FILE).read_text(encoding="utf-8")


def test_comparisons_find_the_baseline_by_loss_not_label(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    from ceco_fair.report.figures_distortion import comparisons_figure

    output = tmp_path / "out"
    protocol = write_protocol(user_protocol({"dataset": "user_datasets:ShadedDigits", "rho": [0.9]}, seeds=[0, 1]))
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    results = load_results(output)
    assert set(results.comparisons["baseline"]) == {"SupCon (baseline)"}
    assert set(results.comparisons["method"]) == {"ConTeX (tau=0.2)"}
    assert set(results.comparisons["n_seeds"]) == {2}
    figure = comparisons_figure(results)
    assert figure is not None and "SupCon (baseline)" in str(figure.layout.title.text)


def test_a_dataset_missing_members_is_named_on_one_line(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol(user_protocol({"dataset": "user_datasets:Incomplete"}, methods=[{"name": "ce"}]))
    assert main([str(protocol), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "user_datasets:Incomplete" in error and "group_names" in error and "sensitive_name" in error


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("no_such_module:Data", "cannot import module 'no_such_module'"),
        ("user_datasets:Nothing", "user_datasets has no callable 'Nothing'"),
        ("user_datasets:_images", "user_datasets:_images is not a class"),
    ],
)
def test_a_bad_dataset_factory_fails_before_training(
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dataset: str,
    message: str,
) -> None:
    protocol = write_protocol(user_protocol({"dataset": dataset}, methods=[{"name": "ce"}]))
    assert main([str(protocol), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
