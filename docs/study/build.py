"""Rebuild docs/study/ from a finished run of protocols/distortion_study.yaml.

    python docs/study/build.py RESULTS_DIR [--colored COLORED_RESULTS_DIR] [--convergence CONVERGENCE_DIR]
        [--tuned TUNED_DIR] [--tuned-random TUNED_RANDOM_DIR] [--docs docs/study]

Copies the runner's own results.csv and comparisons.csv, gathers every run's curves.csv into one
curves.csv (with method, rho and seed), writes convergence.csv (epochs to reach 90% of the run's
final kNN accuracy) and two figures as PNG (accuracy against rho; paired differences against
SupCon), drawn by the report's own figure functions and photographed by headless Chromium.
With ``--colored`` (a finished run of protocols/distortion_study_colored.yaml) its results.csv and
comparisons.csv are copied into ``colored/``. With ``--convergence`` (a finished run of
protocols/distortion_study_convergence.yaml) its curves go to ``convergence/curves.csv`` and the speed
on a common scale (:mod:`ceco_fair.results.convergence`) to ``convergence/convergence.csv``, for the
balanced-bank curve and, restated on the same scale, the biased-bank curve. With ``--tuned`` (a finished
run of protocols/distortion_study_level.yaml, the level search) its results.csv, comparisons.csv,
search.csv, selection.json and paired_trials.csv go to ``tuned/`` with its curves, and the tuned tables
are printed per selection rule: the summary, the paired differences against SupCon, the chosen values,
the read-outs' gain, the convergence on the common scale and the verdicts; then the paired view across
the search space. ``--tuned-random`` does the same for the first tuned study
(protocols/distortion_study_tuned.yaml, per-method draws) into ``tuned_random/``, kept beside the
level one. Prints the Markdown tables that docs/study.md quotes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from playwright.sync_api import sync_playwright

from ceco_fair.report import load_results
from ceco_fair.report.figures_bias import bias_accuracy_by_rho
from ceco_fair.report.figures_distortion import comparisons_figure
from ceco_fair.report.stats import summarize
from ceco_fair.results.convergence import convergence_table
from ceco_fair.results.layout import (
    BALANCED_READOUT,
    COMPARISONS_FILE,
    CURVES_FILE,
    LINEAR_READOUT,
    PAIRED_TRIALS_FILE,
    PHASE_SEARCH,
    PROTOCOL_FILE,
    RESULTS_CSV,
    RUN_FILE,
    RUNS_DIR,
    SEARCH_CSV,
    SELECTION_FILE,
)
from ceco_fair.results.record import condition_label, read_run_file
from ceco_fair.results.seeds import paired_interval
from ceco_fair.results.selection import describe, finals_mode, read_selection
from ceco_fair.summary import summary_markdown

CONVERGENCE_SHARE = 0.9
"""A run has converged at the first epoch whose kNN accuracy reaches this share of its last epoch's."""
STUDY_METRICS = (
    "unbiased_accuracy",
    "bias_conflicting_accuracy",
    "instance_retrieval_within_cell",
    "instance_retrieval",
    "variance_ratio",
    "bias_sensitivity",
    "counterfactual_flip_rate",
    "leakage_within_class",
    "alignment",
    "uniformity",
)
COLORED_METRICS = (
    "accuracy",
    "worst_group_accuracy",
    "equalized_odds_difference",
    "demographic_parity_difference",
    "instance_retrieval_within_cell",
    "variance_ratio",
    "bias_sensitivity",
    "leakage_within_class",
)
CLAIM_METHODS = ("supcon", "contex")
"""The convergence claim's two methods: they alone set the shared level."""
CHROMIUM = "/usr/bin/chromium"
METHOD_ORDER = ("ce", "simclr", "supcon", "contex", "fscl", "biascon")


def gather_curves(folder: Path) -> pd.DataFrame:
    """Every run's curves.csv with its method, rho and seed."""
    frames = []
    for run_dir in sorted((folder / RUNS_DIR).iterdir()):
        curves = run_dir / CURVES_FILE
        if curves.is_file():
            record = read_run_file(run_dir / RUN_FILE)
            frame = pd.read_csv(curves)
            frames.append(frame.assign(run_id=record.run_id, method=record.method, rho=record.rho, seed=record.seed))
    first = ["run_id", "method", "rho", "seed", "epoch"]
    if not frames:
        return pd.DataFrame(columns=first)
    table = pd.concat(frames, ignore_index=True)
    return table[first + [c for c in table.columns if c not in first]]


def convergence(curves: pd.DataFrame) -> pd.DataFrame:
    """Per run: the first epoch whose kNN accuracy reaches CONVERGENCE_SHARE of the last epoch's."""
    rows = []
    for (method, rho, seed), run in curves.groupby(["method", "rho", "seed"], sort=False):
        run = run.sort_values("epoch")
        target = CONVERGENCE_SHARE * float(run["knn_accuracy"].iloc[-1])
        reached = run.loc[run["knn_accuracy"] >= target, "epoch"]
        rows.append({"method": method, "rho": rho, "seed": seed, "epochs_to_90pct": int(reached.iloc[0])})
    return pd.DataFrame(rows)


def signed_interval(mean: float, low: float, high: float, scale: float = 1.0) -> str:
    """``mean [low, high]`` with signs and one decimal, each value times ``scale`` (100: fractions as points)."""
    return f"{scale * mean:+.1f} {bracket(low, high, scale)}"


def bracket(low: float, high: float, scale: float = 1.0) -> str:
    """``[low, high]`` with signs and one decimal, each bound times ``scale``."""
    return f"[{scale * low:+.1f}, {scale * high:+.1f}]"


def contex_minus_supcon(mine: pd.Series, theirs: pd.Series, scale: float = 1.0) -> tuple[float, float, float]:
    """Paired 95% t-interval of ConTeX − SupCon over the seeds (index) both have, differences times ``scale``."""
    seeds = sorted(set(mine.index) & set(theirs.index))
    return paired_interval([scale * float(mine[s] - theirs[s]) for s in seeds], 0.95)


def convergence_tables(table: pd.DataFrame) -> str:
    """Mean epochs to 90% per method x rho, and ConTeX minus SupCon paired by seed."""
    tidy = table.rename(columns={"epochs_to_90pct": "value"}).assign(
        condition=[condition_label(rho, None, None) for rho in table["rho"]]
    )
    summary = summarize(tidy, ["method", "condition"])
    conditions = list(dict.fromkeys(summary["condition"]))
    lines = [
        "| epochs to 90% of final kNN accuracy | " + " | ".join(conditions) + " |",
        "|---|" + "---|" * len(conditions),
    ]
    for method in [m for m in METHOD_ORDER if m in set(summary["method"])]:
        part = summary[summary["method"] == method].set_index("condition")
        lines.append(f"| {method} | " + " | ".join(f"{part.loc[c, 'mean']:.1f}" for c in conditions) + " |")
    lines += ["", "| ConTeX − SupCon, epochs (paired) | mean [95% t-interval] |", "|---|---|"]
    for condition in conditions:
        mine = tidy[(tidy.method == "contex") & (tidy.condition == condition)].set_index("seed")["value"]
        theirs = tidy[(tidy.method == "supcon") & (tidy.condition == condition)].set_index("seed")["value"]
        lines.append(f"| {condition} | {signed_interval(*contex_minus_supcon(mine, theirs))} |")
    return "\n".join(lines)


def common_scale_tables(curves: pd.DataFrame, column: str, label: str) -> tuple[pd.DataFrame, str]:
    """Epochs to a level shared by SupCon and ConTeX, and area under ``column``; their paired difference per rho.

    The verdict rule is the one written in protocols/distortion_study_convergence.yaml: by the paired 95%
    interval of the area difference, "supported" (ConTeX faster) above 0, "contradicted" below 0, else
    "inconclusive"; epochs to level is the secondary measure (below 0 = faster).
    """
    claim = curves[curves["method"].isin(CLAIM_METHODS)]
    table = convergence_table(claim, column).assign(curve=column)
    conditions = sorted(set(table["rho"]))
    head = " | ".join(condition_label(rho, None, None) for rho in conditions)
    lines = [f"| {label}: level, epochs to level, area | {head} |", "|---|" + "---|" * len(conditions)]
    for method in [m for m in METHOD_ORDER if m in set(table["method"])]:
        cells = []
        for rho in conditions:
            part = table[(table.method == method) & (table.rho == rho)]
            cells.append(
                f"{100 * part['level'].iloc[0]:.1f}%, {part['epochs_to_level'].mean():.1f}, "
                f"{100 * part['area'].mean():.1f}%"
            )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"| {label}: ConTeX − SupCon (paired) | area, points | epochs to level | verdict |",
        "|---|---|---|---|",
    ]
    for rho in conditions:
        part = table[table.rho == rho]
        mine = part[part.method == "contex"].set_index("seed")
        theirs = part[part.method == "supcon"].set_index("seed")
        area = contex_minus_supcon(mine.area, theirs.area, scale=100)
        epochs = contex_minus_supcon(mine.epochs_to_level, theirs.epochs_to_level)
        verdict = "supported" if area[1] > 0 else "contradicted" if area[2] < 0 else "inconclusive"
        lines.append(
            f"| {condition_label(rho, None, None)} | {signed_interval(*area)} | "
            f"{signed_interval(*epochs)} | {verdict} |"
        )
    return table, "\n".join(lines)


def save_png(figure: object, path: Path, width: int = 1100, height: int = 520) -> None:
    """Render a plotly figure in headless Chromium and save a PNG of it."""
    with tempfile.TemporaryDirectory() as scratch:
        page_file = Path(scratch) / "figure.html"
        figure.update_layout(updatemenus=[], width=width, height=height)  # type: ignore[attr-defined]
        figure.write_html(page_file, include_plotlyjs=True, full_html=True)  # type: ignore[attr-defined]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(page_file.resolve().as_uri())
            page.wait_for_selector("svg.main-svg")
            page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": width, "height": height})
            browser.close()


def build_convergence(results: Path, target: Path) -> None:
    """Copy the convergence rerun's curves and write its common-scale table; print its Markdown."""
    target.mkdir(exist_ok=True)
    curves = gather_curves(results)
    curves.to_csv(target / "curves.csv", index=False, float_format="%.4g")
    tables = []
    for column, label in (("balanced_knn_accuracy", "balanced bank"), ("knn_accuracy", "biased bank")):
        table, markdown = common_scale_tables(curves, column, label)
        tables.append(table)
        print(markdown, end="\n\n")
    pd.concat(tables, ignore_index=True).to_csv(target / "convergence.csv", index=False, float_format="%.4g")


TUNED_METRICS = ("unbiased_accuracy", "bias_conflicting_accuracy", "instance_retrieval_within_cell")
"""The tuned study's summary tables: the three verdicts' metrics, per selection rule."""
TUNED_FILES = (RESULTS_CSV, COMPARISONS_FILE, SEARCH_CSV, SELECTION_FILE, PROTOCOL_FILE)
"""The runner's files a tuned study copies (a level search adds :data:`PAIRED_TRIALS_FILE`)."""


def rule_runs(results: pd.DataFrame, rule: str) -> set[str]:
    """The run ids a rule picked (its final runs and the search runs of its picks), from results.csv."""
    return set(results.loc[results["selection"] == rule, "run_id"])


def rules_of(results: pd.DataFrame) -> list[str]:
    """The selection rules of a tuned results.csv, in its order (the search's trials left out)."""
    return [rule for rule in dict.fromkeys(results["selection"]) if rule != PHASE_SEARCH]


def paired_table(comparisons: pd.DataFrame, rule: str) -> str:
    """ConTeX − SupCon per rho and metric under one rule, linear read-out, in points with the paired interval."""
    part = comparisons[(comparisons["selection"] == rule) & (comparisons["readout"] == LINEAR_READOUT)]
    lines = [
        f"| {rule}: ConTeX − SupCon (paired), points | condition | pairs | mean [95% t-interval] |",
        "|---|---|---|---|",
    ]
    for row in part.itertuples():
        lines.append(
            f"| {row.metric} | {row.condition} | {row.n_seeds} | "
            f"{signed_interval(row.mean_difference, row.ci_low, row.ci_high, scale=100)} |"
        )
    return "\n".join(lines)


def chosen_table(selection: dict[str, dict[str, dict[str, dict[str, dict[str, object]]]]]) -> str:
    """Each rule's pick per method, condition and repeat: the trial, its validation score and its values."""
    lines = ["| rule | method | condition | repeat | trial | score | values |", "|---|---|---|---|---|---|---|"]
    for rule, methods in selection.items():
        for method, conditions in methods.items():
            for condition, repeats in conditions.items():
                for repeat, pick in repeats.items():
                    values = pick["values"]
                    assert isinstance(values, dict)
                    shown = ", ".join(f"{key}={value:.3g}" for key, value in values.items())
                    lines.append(
                        f"| {rule} | {method} | {condition} | {repeat} | {pick['trial']} | {pick['score']:.3f} "
                        f"| {shown} |"
                    )
    return "\n".join(lines)


def temperature_table(search: pd.DataFrame) -> str:
    """How often each method tried each temperature, per condition: a level search tries every value alike."""
    counts = search.groupby(["condition", "method", "temperature"]).size().unstack("temperature", fill_value=0)
    values = list(counts.columns)
    lines = [
        "| trials per temperature | method | " + " | ".join(f"τ = {value:g}" for value in values) + " |",
        "|---|---|" + "---|" * len(values),
    ]
    for (condition, method), row in counts.iterrows():
        lines.append(f"| {condition} | {method} | " + " | ".join(str(int(row[value])) for value in values) + " |")
    return "\n".join(lines)


PAIRED_METRICS = (
    "test:unbiased_accuracy",
    "test:bias_conflicting_accuracy",
    "test:instance_retrieval_within_cell",
    "val_accuracy",
    "val_worst_class",
    "val_worst_group",
)
"""The paired view's rows docs/study.md quotes: the claims' test metrics, then the rules' validation scores."""


def paired_trials_markdown(paired: pd.DataFrame) -> str:
    """ConTeX − SupCon at the trials they share, per condition and metric, in points."""
    lines = [
        "| at the same trial: ConTeX − SupCon, points | condition | trials | median | ConTeX wins | worst | best |",
        "|---|---|---|---|---|---|---|",
    ]
    shown = paired[paired["metric"].isin(PAIRED_METRICS)].copy()
    shown["order"] = shown["metric"].map(PAIRED_METRICS.index)
    for row in shown.sort_values(["order", "condition"]).itertuples():
        lines.append(
            f"| {row.metric} | {row.condition} | {row.n_trials} | {100 * row.median:+.1f} | "
            f"{100 * row.win_share:.0f}% | {100 * row.worst:+.1f} | {100 * row.best:+.1f} |"
        )
    return "\n".join(lines)


def readout_gains(results: pd.DataFrame, rule: str, metric: str = "bias_conflicting_accuracy") -> pd.DataFrame:
    """Per method and rho under one rule: linear and balanced ``metric`` and their paired gain over seeds.

    Returns:
        Columns ``method, rho, n, linear, balanced, gain, low, high`` (fractions).
    """
    part = results[
        results["run_id"].isin(rule_runs(results, rule))
        & (results["selection"] == rule)
        & (results["metric"] == metric)
    ]
    rows = []
    for (method, rho), group in part.groupby(["method", "rho"], sort=False):
        by = group.pivot_table(index="seed", columns="readout", values="value")
        gains = (by[BALANCED_READOUT] - by[LINEAR_READOUT]).dropna()
        mean, low, high = paired_interval(gains.tolist(), 0.95)
        rows.append(
            {
                "method": method,
                "rho": rho,
                "n": len(gains),
                "linear": by[LINEAR_READOUT].mean(),
                "balanced": by[BALANCED_READOUT].mean(),
                "gain": mean,
                "low": low,
                "high": high,
            }
        )
    return pd.DataFrame(rows)


def gains_table(gains: pd.DataFrame, rule: str) -> str:
    """The read-out gains of one rule as Markdown, in %."""
    lines = [
        f"| {rule}: bias-conflicting accuracy (%) | condition | seeds | linear | balanced | balanced − linear |",
        "|---|---|---|---|---|---|",
    ]
    for row in gains.itertuples():
        lines.append(
            f"| {row.method} | {condition_label(row.rho, None, None)} | {row.n} | {100 * row.linear:.1f} | "
            f"{100 * row.balanced:.1f} | {signed_interval(row.gain, row.low, row.high, scale=100)} |"
        )
    return "\n".join(lines)


CLAIMS = (
    ("less distortion", ("instance_retrieval_within_cell",)),
    ("less bias", ("unbiased_accuracy", "bias_conflicting_accuracy")),
)
"""The protocol header's claims decided by comparisons.csv: ConTeX − SupCon above 0 on every metric named."""


def verdict(intervals: list[tuple[float, float]]) -> str:
    """The header's rule on paired intervals ``(low, high)``: all above 0 supported, any below 0 not supported."""
    if any(high < 0 for _, high in intervals):
        return "not supported"
    if all(low > 0 for low, _ in intervals):
        return "supported"
    return "inconclusive"


def verdict_table(comparisons: pd.DataFrame, convergence_rows: pd.DataFrame, rule: str) -> str:
    """One rule's verdicts per claim and rho, with the intervals that decide them (points)."""
    part = comparisons[(comparisons["selection"] == rule) & (comparisons["readout"] == LINEAR_READOUT)]
    conditions = list(dict.fromkeys(part["condition"]))
    lines = [
        f"| {rule}: claim (ConTeX vs SupCon) | " + " | ".join(conditions) + " |",
        "|---|" + "---|" * len(conditions),
    ]
    for claim, metrics in CLAIMS:
        cells = []
        for condition in conditions:
            rows = part[(part["condition"] == condition) & part["metric"].isin(metrics)].set_index("metric")
            intervals = [(float(rows.loc[m, "ci_low"]), float(rows.loc[m, "ci_high"])) for m in metrics]
            shown = "; ".join(bracket(low, high, scale=100) for low, high in intervals)
            cells.append(f"{verdict(intervals)} {shown}")
        lines.append(f"| {claim} | " + " | ".join(cells) + " |")
    if not convergence_rows.empty:
        cells = []
        for condition in conditions:
            rho = float(condition.removeprefix("rho="))
            run = convergence_rows[np.isclose(convergence_rows["rho"].astype(float), rho)]
            mine = run[run["method"] == "contex"].set_index("seed")["area"]
            theirs = run[run["method"] == "supcon"].set_index("seed")["area"]
            _, low, high = contex_minus_supcon(mine, theirs)
            cells.append(f"{verdict([(low, high)])} {bracket(low, high, scale=100)}")
        lines.append("| faster convergence (balanced-bank area) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_tuned(results_dir: Path, target: Path) -> None:
    """Copy a tuned study's files and curves into ``target``; print its tables per selection rule."""
    target.mkdir(exist_ok=True)
    level = (results_dir / PAIRED_TRIALS_FILE).is_file()
    for name in (*TUNED_FILES, *((PAIRED_TRIALS_FILE,) if level else ())):
        shutil.copyfile(results_dir / name, target / name)
    curves = gather_curves(results_dir)
    curves.to_csv(target / "curves.csv", index=False, float_format="%.4g")
    for text in tuned_tables(target):
        print(text, end="\n\n")


def tuned_tables(folder: Path) -> list[str]:
    """Every Markdown table docs/study.md quotes of a tuned study copied into ``folder``, in order.

    Also writes ``folder/convergence.csv`` (the common-scale convergence per rule).
    """
    results = pd.read_csv(folder / RESULTS_CSV)
    comparisons = pd.read_csv(folder / COMPARISONS_FILE)
    curves = pd.read_csv(folder / "curves.csv")
    protocol_file = folder / PROTOCOL_FILE  # a study copied before the file was: its picks were retrained per seed
    protocol = yaml.safe_load(protocol_file.read_text("utf-8")) if protocol_file.is_file() else {"search": {}}
    texts = [summary_markdown(folder, TUNED_METRICS), chosen_table(read_selection(folder))]
    search = pd.read_csv(folder / SEARCH_CSV)
    if "temperature" in search.columns:
        texts.append(temperature_table(search))
    tables = []
    for rule in rules_of(results):
        texts.append(f"Selection: {describe(rule, finals_mode(protocol.get('search')))}")
        texts.append(paired_table(comparisons, rule))
        texts.append(gains_table(readout_gains(results, rule), rule))
        picked = curves[curves["run_id"].isin(rule_runs(results, rule))]
        table = pd.DataFrame()
        if not picked.empty:
            table, markdown = common_scale_tables(picked, "balanced_knn_accuracy", f"{rule}, balanced bank")
            tables.append(table.assign(selection=rule))
            texts.append(markdown)
        texts.append(verdict_table(comparisons, table, rule))
    if (folder / PAIRED_TRIALS_FILE).is_file():
        texts.append(paired_trials_markdown(pd.read_csv(folder / PAIRED_TRIALS_FILE)))
    if tables:
        pd.concat(tables, ignore_index=True).to_csv(folder / "convergence.csv", index=False, float_format="%.4g")
    return texts


def main() -> None:
    """Rebuild the docs/study/ files from the folders given on the command line and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", help="a finished run of protocols/distortion_study.yaml")
    parser.add_argument("--colored", type=Path, help="a finished run of protocols/distortion_study_colored.yaml")
    parser.add_argument(
        "--convergence", type=Path, help="a finished run of protocols/distortion_study_convergence.yaml"
    )
    parser.add_argument("--tuned", type=Path, help="a finished run of protocols/distortion_study_level.yaml")
    parser.add_argument(
        "--tuned-random", type=Path, help="a finished run of protocols/distortion_study_tuned.yaml (per-method draws)"
    )
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    docs: Path = args.docs
    if args.tuned is not None:
        build_tuned(args.tuned, docs / "tuned")
    if args.tuned_random is not None:
        build_tuned(args.tuned_random, docs / "tuned_random")
    if args.convergence is not None:
        build_convergence(args.convergence, docs / "convergence")
    if args.results is None:
        return
    for name in (RESULTS_CSV, COMPARISONS_FILE):
        shutil.copyfile(args.results / name, docs / name)
    curves = gather_curves(args.results)
    curves.to_csv(docs / "curves.csv", index=False, float_format="%.4g")
    steps = convergence(curves)
    steps.to_csv(docs / "convergence.csv", index=False)
    results = load_results(args.results)
    accuracy = bias_accuracy_by_rho(results)
    forest = comparisons_figure(results)
    assert accuracy is not None and forest is not None
    save_png(accuracy, docs / "accuracy_by_rho.png")
    save_png(forest, docs / "paired_differences.png", width=1400, height=560)
    print(summary_markdown(docs, STUDY_METRICS))
    print(convergence_tables(steps))
    if args.colored is not None:
        colored = docs / "colored"
        colored.mkdir(exist_ok=True)
        for name in (RESULTS_CSV, COMPARISONS_FILE):
            shutil.copyfile(args.colored / name, colored / name)
        print(summary_markdown(colored, COLORED_METRICS))


if __name__ == "__main__":
    main()
