import math

import pandas as pd
import pytest
from scipy import stats

from ceco_fair.metrics.specs import METRIC_SPECS
from ceco_fair.report.html import format_interval
from ceco_fair.results.layout import RESULTS_CSV
from ceco_fair.summary import format_cell, main, summary_markdown


def write_results(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / RESULTS_CSV, index=False)


def row(method, seed, rho, metric, value):
    return {
        "run_id": f"{method}-{rho}-{seed}",
        "method": method,
        "rho": rho,
        "target": None,
        "sensitive": None,
        "seed": seed,
        "metric": metric,
        "value": value,
    }


def test_cells_are_means_with_student_t_intervals(tmp_path):
    values = {0: 0.30, 1: 0.36, 2: 0.33}
    rows = [row("supcon", s, 0.9, "unbiased_accuracy", v) for s, v in values.items()]
    rows += [row("supcon", s, 0.9, "variance_ratio", 0.5 + 0.01 * s) for s in values]
    rows += [row("contex", 0, 0.9, "unbiased_accuracy", 0.4)]
    write_results(tmp_path / "out", rows)
    text = summary_markdown(tmp_path / "out", ["unbiased_accuracy", "variance_ratio"])
    mean = sum(values.values()) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values.values()) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert f"| supcon | {100 * mean:.1f} [{100 * (mean - half):.1f}, {100 * (mean + half):.1f}] |" in text
    assert "| contex | 40.0 |" in text
    assert "| unbiased accuracy (%) | rho=0.9 |" in text
    assert "| variance ratio | rho=0.9 |" in text and "| supcon | 0.510 [" in text


def test_format_cell_edge_cases():
    assert format_cell(math.nan, math.nan, math.nan, METRIC_SPECS["accuracy"]) == "–"
    assert format_cell(0.5, 0.5, 0.5, METRIC_SPECS["variance_ratio"]) == "0.500"
    assert format_cell(0.5, 0.4, 0.6, None) == "0.500 [0.400, 0.600]"


def test_differences_between_groups_print_as_the_report_prints_them(tmp_path):
    rows = [row("supcon", s, 0.9, "equalized_odds_difference", v) for s, v in ((0, 0.1234), (1, 0.1434))]
    write_results(tmp_path / "out", rows)
    text = summary_markdown(tmp_path / "out", ["equalized_odds_difference"])
    assert "| equalized-odds difference (%) | rho=0.9 |" in text
    assert "| supcon | 13.3 [" in text  # percent, one decimal: as the report's summary table
    spec = METRIC_SPECS["equalized_odds_difference"]
    shown = format_interval(pd.Series({"mean": 0.1334, "low": 0.1234, "high": 0.1434, "kind": "bootstrap"}), spec)
    assert shown == ("13.3", "[12.3–14.3]")


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert "no results.csv" in capsys.readouterr().err
    write_results(tmp_path / "out", [row("ce", 0, 0.9, "accuracy", 0.5)])
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "out"), "--metrics", "bias_sensitivity"])
    assert exit_info.value.code == 2
    assert main([str(tmp_path / "out")]) == 0
    assert "| ce | 50.0 |" in capsys.readouterr().out


def test_readouts_are_shown_one_at_a_time_or_side_by_side(tmp_path, capsys):
    rows = [
        {**row("ce", 0, 0.9, "bias_conflicting_accuracy", value), "readout": readout}
        for readout, value in (("linear", 0.1), ("balanced", 0.3), ("head", 0.2))
    ]
    rows.append({**row("supcon", 0, 0.9, "bias_conflicting_accuracy", 0.4), "readout": "linear"})
    write_results(tmp_path / "out", rows)
    assert "| ce | 10.0 |" in summary_markdown(tmp_path / "out")
    balanced = summary_markdown(tmp_path / "out", readout="balanced")
    assert "| ce | 30.0 |" in balanced and "supcon" not in balanced
    every = summary_markdown(tmp_path / "out", readout="all").splitlines()
    shown = [line.split(" |")[0] for line in every if line.startswith("| ce") or line.startswith("| supcon")]
    assert shown == ["| ce · linear", "| ce · balanced", "| ce · head", "| supcon · linear"]
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "out"), "--readout", "nonsense"])
    assert exit_info.value.code == 2
    write_results(tmp_path / "old", [row("ce", 0, 0.9, "accuracy", 0.5)])  # written before read-outs
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "old"), "--readout", "head"])
    assert exit_info.value.code == 2
    assert "no head read-out" in capsys.readouterr().err
