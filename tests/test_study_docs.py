"""docs/study.md quotes the runner's own files in docs/study/, and the study is as large as it says."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pandas as pd

from ceco_fair.metrics.specs import METRIC_SPECS, unit_suffix
from ceco_fair.runner.protocol import load_protocol
from ceco_fair.summary import summary_markdown

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "study"
TUNED = STUDY / "tuned_random"
SELECTION_LINE = "Selection: "


def test_study_has_five_seeds_per_method_and_rho():
    results = pd.read_csv(STUDY / "results.csv")
    protocol = load_protocol(ROOT / "protocols" / "distortion_study.yaml")
    unbiased = results[results.metric == "unbiased_accuracy"]
    seeds = unbiased.groupby(["method", "rho"])["seed"].nunique()
    assert len(seeds) == len(protocol.methods) * len(protocol.rhos)
    assert (seeds >= 5).all()
    assert 0.99 in set(unbiased.rho) and len(set(unbiased.rho) - {0.99}) >= 3


def markdown_tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """Every Markdown table of ``text``: where it is, and its rows of stripped cells.

    Where: the ``## `` section, followed by `` / `` and the last ``Selection: `` line of the section when
    there is one (the selection rule a tuned table belongs to).
    """
    tables: list[tuple[str, list[list[str]]]] = []
    heading, rule, rows = "", "", None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, rule = line[3:].strip(), ""
        if line.startswith(SELECTION_LINE):
            rule = line[len(SELECTION_LINE) :].strip()
        section = f"{heading} / {rule}" if rule else heading
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
        folder = STUDY / "colored" if "ColoredMNIST" in section else TUNED if "Tuned" in section else STUDY
        computed = markdown_tables(summary_markdown(folder, [metric]))
        rule = section.partition(" / ")[2]
        ((_, expected),) = [c for c in computed if c[0].partition(" / ")[2] == rule] if rule else computed
        assert rows[0] == expected[0], (section, metric)
        for quoted, computed in zip(rows[1:], expected[1:], strict=True):
            assert quoted == computed, (section, metric, quoted[0])
        checked.append((folder.name, metric))
    assert len([c for c in checked if c[0] == "study"]) == 10
    assert len([c for c in checked if c[0] == "colored"]) == 6
    assert len([c for c in checked if c[0] == "tuned"]) == 9  # 3 metrics x 3 rules


def test_the_table_parser_reads_cells_and_sees_a_changed_one():
    page = "## A\n\n| accuracy (%) | rho=0.9 |\n|---|---|\n| ce | 66.8 [63.6, 70.0] |\n\ntext\n"
    assert markdown_tables(page) == [("A", [["accuracy (%)", "rho=0.9"], ["ce", "66.8 [63.6, 70.0]"]])]
    ruled = page.replace("\n\n|", "\n\nSelection: oracle: upper bound\n\n|", 1) + "## B\n\n| x |\n"
    assert [where for where, _ in markdown_tables(ruled)] == ["A / oracle: upper bound", "B"]
    assert metric_of("accuracy (%)") == "accuracy" and metric_of("accuracy") is None
    assert markdown_tables(page.replace("66.8", "66.9"))[0][1][1] != ["ce", "66.8 [63.6, 70.0]"]


def test_comparisons_csv_is_the_runners_paired_table():
    comparisons = pd.read_csv(STUDY / "comparisons.csv")
    assert set(comparisons.baseline) == {"supcon"}
    assert (comparisons.n_seeds >= 5).all()
    assert (comparisons.ci_low <= comparisons.mean_difference).all()
    assert (comparisons.mean_difference <= comparisons.ci_high).all()


def study_builder() -> ModuleType:
    """docs/study/build.py as a module (it writes the tuned tables that docs/study.md quotes)."""
    spec = importlib.util.spec_from_file_location("study_build", STUDY / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tuned_study_has_five_seeds_per_method_rho_and_rule():
    results = pd.read_csv(TUNED / "results.csv")
    protocol = load_protocol(ROOT / "protocols" / "distortion_study_tuned.yaml")
    assert protocol.search is not None
    final = results[(results.selection != "search") & (results.metric == "bias_conflicting_accuracy")]
    seeds = final.groupby(["selection", "method", "rho"])["seed"].nunique()
    assert len(seeds) == len(protocol.search.select) * len(protocol.methods) * len(protocol.rhos)
    assert (seeds >= 5).all()
    search = pd.read_csv(TUNED / "search.csv")
    assert search.groupby(["method", "condition"])["trial"].nunique().eq(protocol.search.trials).all()
    picks = json.loads((TUNED / "selection.json").read_text(encoding="utf-8"))
    assert set(picks) == set(protocol.search.select)


def test_every_tuned_gain_and_paired_table_is_recomputed_from_the_copied_files():
    builder = study_builder()
    results = pd.read_csv(TUNED / "results.csv")
    comparisons = pd.read_csv(TUNED / "comparisons.csv")
    quoted = {tuple(rows[0]): rows for _, rows in markdown_tables((ROOT / "docs" / "study.md").read_text("utf-8"))}
    checked = 0
    curves = pd.read_csv(TUNED / "curves.csv")
    for rule in builder.rules_of(results):
        picked = curves[curves["run_id"].isin(builder.rule_runs(results, rule))]
        convergence, markdown = builder.common_scale_tables(picked, "balanced_knn_accuracy", f"{rule}, balanced bank")
        for text in (
            builder.gains_table(builder.readout_gains(results, rule), rule),
            builder.paired_table(comparisons, rule),
            builder.verdict_table(comparisons, convergence, rule),
            *markdown.split("\n\n"),
        ):
            ((_, expected),) = markdown_tables(text)
            assert quoted.get(tuple(expected[0])) == expected, (rule, expected[0][0])
            checked += 1
    assert checked == 15  # 5 tables x 3 rules
    ((_, chosen),) = markdown_tables(builder.chosen_table(json.loads((TUNED / "selection.json").read_text("utf-8"))))
    assert quoted.get(tuple(chosen[0])) == chosen
