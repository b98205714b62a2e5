"""docs/study.md quotes the runner's own files in docs/study/, and the study is as large as it says."""

from pathlib import Path

import pandas as pd

from ceco_fair.metrics.specs import METRIC_SPECS, unit_suffix
from ceco_fair.runner.protocol import load_protocol
from ceco_fair.summary import summary_markdown

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


def markdown_tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """Every Markdown table of ``text``: the ``## `` section it is in, and its rows of stripped cells."""
    tables: list[tuple[str, list[list[str]]]] = []
    section, rows = "", None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if not line.startswith("|"):
            rows = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if rows is None:
            rows = []
            tables.append((section, rows))
        if not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    return tables


def metric_of(header: str) -> str | None:
    """The metric a table's first header cell names (its label, and `` (%)`` for a percent metric)."""
    return next((name for name, spec in METRIC_SPECS.items() if spec.label + unit_suffix(spec) == header), None)


def test_every_metric_table_of_the_study_is_the_summary_of_its_results_cell_by_cell():
    checked = []
    for section, rows in markdown_tables((ROOT / "docs" / "study.md").read_text(encoding="utf-8")):
        metric = metric_of(rows[0][0])
        if metric is None:
            continue
        folder = STUDY / "colored" if "ColoredMNIST" in section else STUDY
        ((_, expected),) = markdown_tables(summary_markdown(folder, [metric]))
        assert rows[0] == expected[0], (section, metric)
        for quoted, computed in zip(rows[1:], expected[1:], strict=True):
            assert quoted == computed, (section, metric, quoted[0])
        checked.append((folder.name, metric))
    assert len([c for c in checked if c[0] == "study"]) == 10
    assert len([c for c in checked if c[0] == "colored"]) == 6


def test_the_table_parser_reads_cells_and_sees_a_changed_one():
    page = "## A\n\n| accuracy (%) | rho=0.9 |\n|---|---|\n| ce | 66.8 [63.6, 70.0] |\n\ntext\n"
    assert markdown_tables(page) == [("A", [["accuracy (%)", "rho=0.9"], ["ce", "66.8 [63.6, 70.0]"]])]
    assert metric_of("accuracy (%)") == "accuracy" and metric_of("accuracy") is None
    assert markdown_tables(page.replace("66.8", "66.9"))[0][1][1] != ["ce", "66.8 [63.6, 70.0]"]


def test_comparisons_csv_is_the_runners_paired_table():
    comparisons = pd.read_csv(STUDY / "comparisons.csv")
    assert set(comparisons.baseline) == {"supcon"}
    assert (comparisons.n_seeds >= 5).all()
    assert (comparisons.ci_low <= comparisons.mean_difference).all()
    assert (comparisons.mean_difference <= comparisons.ci_high).all()
