"""docs/study.md quotes the runner's own files in docs/study/, and the study is as large as it says."""

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pandas as pd

from ceco_fair.metrics.specs import METRIC_SPECS, unit_suffix
from ceco_fair.runner.protocol import load_protocol
from ceco_fair.summary import summary_markdown

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "study"
TUNED = STUDY / "tuned"
TUNED_RANDOM = STUDY / "tuned_random"
RANDOM_SECTION = "per-method draws"
"""The heading of docs/study.md's section on the first tuned study (``tuned_random``)."""
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
        folder = (
            STUDY / "colored"
            if "ColoredMNIST" in section
            else TUNED_RANDOM
            if RANDOM_SECTION in section
            else TUNED
            if "Tuned" in section
            else STUDY
        )
        computed = markdown_tables(summary_markdown(folder, [metric]))
        rule = section.partition(" / ")[2]
        ((_, expected),) = [c for c in computed if c[0].partition(" / ")[2] == rule] if rule else computed
        assert rows[0] == expected[0], (section, metric)
        for quoted, computed in zip(rows[1:], expected[1:], strict=True):
            assert quoted == computed, (section, metric, quoted[0])
        checked.append((folder.name, metric))
    assert len([c for c in checked if c[0] == "study"]) == 10
    assert len([c for c in checked if c[0] == "colored"]) == 6
    assert len([c for c in checked if c[0] == "tuned"]) == 12  # 3 metrics x 4 rules
    assert len([c for c in checked if c[0] == "tuned_random"]) == 9  # 3 metrics x 3 rules


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


def test_the_level_study_has_five_repeats_per_method_rho_and_rule_and_tried_every_temperature():
    results = pd.read_csv(TUNED / "results.csv")
    protocol = load_protocol(ROOT / "protocols" / "distortion_study_level.yaml")
    assert protocol.search is not None and protocol.search.finals == "repeat" and protocol.search.repeats == 5
    final = results[(results.selection != "search") & (results.metric == "bias_conflicting_accuracy")]
    seeds = final[final.readout == "linear"].groupby(["selection", "method", "rho"])["seed"].nunique()
    assert len(seeds) == len(protocol.search.select) * len(protocol.methods) * len(protocol.rhos)
    assert (seeds == 5).all()
    search = pd.read_csv(TUNED / "search.csv")
    assert search.groupby(["method", "condition", "repeat"])["trial"].nunique().eq(protocol.search.trials).all()
    tried = search.groupby(["method", "condition"])["temperature"].apply(set)
    assert (tried.apply(lambda values: values == {0.05, 0.1, 0.2})).all() and len(tried) == 4
    shared = search.pivot_table(index=["condition", "repeat", "trial"], columns="method", values="temperature")
    assert (shared["supcon"] == shared["contex"]).all()  # a level field: the same temperature at every trial
    picks = json.loads((TUNED / "selection.json").read_text(encoding="utf-8"))
    assert set(picks) == set(protocol.search.select)
    comparisons = pd.read_csv(TUNED / "comparisons.csv")
    assert set(comparisons.finals) == {"repeat"} and (comparisons.n_seeds == 5).all()


def test_the_first_tuned_study_is_kept_and_shows_why_it_was_not_level():
    search = pd.read_csv(TUNED_RANDOM / "search.csv")
    tried = search.groupby("method")["temperature"].apply(set)
    assert tried["supcon"] == {0.1} and 0.05 in tried["contex"]


def quoted_tables(random: bool) -> dict[tuple[str, ...], list[list[str]]]:
    """docs/study.md's tables of the level study's sections (``random``: of the first tuned study's), by header."""
    return {
        tuple(rows[0]): rows
        for section, rows in markdown_tables((ROOT / "docs" / "study.md").read_text("utf-8"))
        if (RANDOM_SECTION in section) == random and (random or section.startswith("Tuned"))
    }


def test_every_tuned_table_is_recomputed_from_the_copied_files(tmp_path):
    builder = study_builder()
    for folder in (TUNED, TUNED_RANDOM):
        quoted = quoted_tables(random=folder == TUNED_RANDOM)
        copy = tmp_path / folder.name
        shutil.copytree(folder, copy)
        texts = builder.tuned_tables(copy)[1:]  # the summary tables: the test above, cell by cell
        tables = [expected for text in texts for _, expected in markdown_tables(text)]
        for expected in tables:
            assert quoted.get(tuple(expected[0])) == expected, (folder.name, expected[0][0])
        assert len(tables) >= 15, folder.name
        pd.testing.assert_frame_equal(pd.read_csv(copy / "convergence.csv"), pd.read_csv(folder / "convergence.csv"))
