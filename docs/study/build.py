"""Rebuild docs/study/ from a finished run of protocols/distortion_study.yaml.

    python docs/study/build.py RESULTS_DIR [--colored COLORED_RESULTS_DIR] [--docs docs/study]

Copies the runner's own results.csv and comparisons.csv, gathers every run's curves.csv into one
curves.csv (with method, rho and seed), writes convergence.csv (epochs to reach 90% of the run's
final kNN accuracy) and two figures as PNG (accuracy against rho; paired differences against
SupCon), drawn by the report's own figure functions and photographed by headless Chromium.
With ``--colored`` (a finished run of protocols/distortion_study_colored.yaml) its results.csv and
comparisons.csv are copied into ``colored/``. Prints the Markdown tables that docs/study.md quotes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from playwright.sync_api import sync_playwright

from ceco_fair.report import load_results
from ceco_fair.report.figures_bias import bias_accuracy_by_rho
from ceco_fair.report.figures_distortion import comparisons_figure
from ceco_fair.report.stats import summarize
from ceco_fair.results.layout import COMPARISONS_FILE, CURVES_FILE, RESULTS_CSV, RUN_FILE, RUNS_DIR
from ceco_fair.results.record import condition_label, read_run_file
from ceco_fair.results.seeds import paired_interval
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
            frames.append(frame.assign(method=record.method, rho=record.rho, seed=record.seed))
    table = pd.concat(frames, ignore_index=True)
    first = ["method", "rho", "seed", "epoch"]
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


def convergence_tables(table: pd.DataFrame) -> str:
    """Mean epochs to 90% per method x rho, and ConTeX minus SupCon paired by seed."""
    tidy = table.rename(columns={"epochs_to_90pct": "value"}).assign(
        condition=[condition_label(rho, None, None) for rho in table["rho"]]
    )
    summary = summarize(tidy, ["method", "condition"])
    conditions = list(dict.fromkeys(summary["condition"]))
    lines = ["| epochs to 90% of final kNN accuracy | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    for method in [m for m in METHOD_ORDER if m in set(summary["method"])]:
        part = summary[summary["method"] == method].set_index("condition")
        lines.append(f"| {method} | " + " | ".join(f"{part.loc[c, 'mean']:.1f}" for c in conditions) + " |")
    lines += ["", "| ConTeX − SupCon, epochs (paired) | mean [95% t-interval] |", "|---|---|"]
    for condition in conditions:
        mine = tidy[(tidy.method == "contex") & (tidy.condition == condition)].set_index("seed")["value"]
        theirs = tidy[(tidy.method == "supcon") & (tidy.condition == condition)].set_index("seed")["value"]
        seeds = sorted(set(mine.index) & set(theirs.index))
        mean, low, high = paired_interval([float(mine[s] - theirs[s]) for s in seeds], 0.95)
        lines.append(f"| {condition} | {mean:+.1f} [{low:+.1f}, {high:+.1f}] |")
    return "\n".join(lines)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--colored", type=Path, help="a finished run of protocols/distortion_study_colored.yaml")
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    docs: Path = args.docs
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
