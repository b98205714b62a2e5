"""Builders of synthetic results folders in the layout a protocol run writes.

The layout is :mod:`ceco_fair.results.layout`'s: top-level protocol, manifest and result tables, and per
run its record (:class:`~ceco_fair.results.record.RunRecord`: ``run.json`` and ``metrics.json``), history,
bias matrix (bias runs) or group table (group runs), projection and a checkpoint the report must ignore.
Values are random but plausible and reproducible.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ceco_fair.results.comparisons import write_comparisons
from ceco_fair.results.folder import write_results
from ceco_fair.results.layout import (
    BIAS_MATRIX_FILE,
    CHECKPOINT_FILE,
    COLOUR_STRIP_FILE,
    CURVES_FILE,
    GROUP_TABLE_FILE,
    HISTORY_FILE,
    MANIFEST_FILE,
    PROJECTION_FILE,
    PROTOCOL_FILE,
    curves_columns,
    run_dir,
)
from ceco_fair.results.record import RunRecord

BIAS_METHODS = ("ce", "supcon", "contex")
GROUP_METHODS = ("supcon", "fscl", "contex")
GROUP_NAMES = ("White", "Black", "Asian")
BIAS_CLASSES = 10
BIAS_GROUP_COLOURS = [f"rgb({10 * i},{255 - 10 * i},0)" for i in range(BIAS_CLASSES)]
STRIP_COLOURS = [(10 * i, 255 - 10 * i, 0) for i in range(BIAS_CLASSES)]


def write_biased_mnist_folder(
    root: Path,
    *,
    methods: Sequence[str] = BIAS_METHODS,
    rhos: Sequence[float] = (0.99,),
    seeds: Sequence[int] = (0,),
    epochs: int = 10,
    projection_points: int = 2000,
    name: str = "quickstart",
    diagnostics: bool = False,
) -> Path:
    """Write a BiasedMNIST protocol's results (one run per method × ρ × seed) into ``root``.

    With ``diagnostics`` every run also gets the representation diagnostics, per-epoch curves and a
    colour strip, and the folder a ``comparisons.csv``, as a run with ``eval.track_every`` writes them.
    """
    runs: list[RunRecord] = []
    for m, method in enumerate(methods):
        for rho in rhos:
            for seed in seeds:
                rng = np.random.default_rng([m, int(rho * 1000), seed])
                run_id = f"{method}-rho{rho:g}-seed{seed}"
                matrix = _bias_matrix(rng, strength=0.3 + 0.2 * m)
                aligned = float(np.nanmean(np.diag(matrix)))
                off = ~np.eye(BIAS_CLASSES, dtype=bool) & ~np.isnan(matrix)
                conflicting = float(matrix[off].mean())
                metrics = {
                    "accuracy": round(0.1 * aligned + 0.9 * conflicting, 6),
                    "unbiased_accuracy": round(float(np.nanmean(matrix)), 6),
                    "bias_aligned_accuracy": round(aligned, 6),
                    "bias_conflicting_accuracy": round(conflicting, 6),
                }
                run = RunRecord(run_id, method, method, "biased_mnist", "bias", rho=rho, seed=seed)
                folder = _write_run(
                    root, run, rng, epochs, projection_points, classes=BIAS_CLASSES, groups=BIAS_CLASSES
                )
                pd.DataFrame(
                    matrix,
                    index=pd.Index(range(BIAS_CLASSES), name="target"),
                    columns=[str(c) for c in range(BIAS_CLASSES)],
                ).to_csv(folder / BIAS_MATRIX_FILE)
                if diagnostics:
                    metrics.update(_write_distortion(folder, rng, epochs))
                names = ("digit", "background colour")
                runs.append(_finish(folder, run, metrics, names=names, colours=BIAS_GROUP_COLOURS))
    protocol = {
        "name": name,
        "seeds": list(seeds),
        "data": {"dataset": "biased_mnist", "source": "embedded", "rho": list(rhos)},
        "encoder": {"arch": "small_conv", "feature_dim": 128},
        "methods": [{"name": method} for method in methods],
        "train": {"epochs": epochs, "batch_size": 256},
        "probe": {"epochs": 20},
        "report": True,
    }
    _write_top(root, protocol, runs)
    if diagnostics:
        write_comparisons(root, [run.to_json() for run in runs], kind="bias", baseline=None, confidence=0.95)
    return root


def _write_distortion(folder: Path, rng: np.random.Generator, epochs: int) -> dict[str, float]:
    """A run's curves and colour strip; returns its diagnostics."""
    curves = pd.DataFrame({"epoch": np.arange(1, epochs + 1)})
    for column in curves_columns()[1:]:
        if column != "knn_worst_group_accuracy":
            curves[column] = np.sort(rng.uniform(0.1, 0.9, size=epochs))
    curves.to_csv(folder / CURVES_FILE, index=False)
    digit = (rng.uniform(size=(28, 28)) > 0.7)[..., None]
    images = [np.where(digit, 255, np.array(colour)[None, None, :]).astype(int).tolist() for colour in STRIP_COLOURS]
    predictions = [int(p) for p in rng.integers(0, BIAS_CLASSES, size=len(STRIP_COLOURS))]
    _write_json(
        folder / COLOUR_STRIP_FILE,
        {"index": 0, "target": 7, "colour": 3, "images": images, "predictions": predictions},
    )
    return {
        "instance_retrieval": float(rng.uniform(0.1, 0.5)),
        "instance_retrieval_within_cell": float(rng.uniform(0.3, 0.9)),
        "alignment": float(rng.uniform(0.1, 0.6)),
        "uniformity": float(rng.uniform(-3.5, -1.0)),
        "variance_ratio": float(rng.uniform(0.2, 0.9)),
        "leakage": float(rng.uniform(0.1, 1.0)),
        "leakage_within_class": float(rng.uniform(0.1, 1.0)),
        "bias_sensitivity": float(rng.uniform(0.0, 1.0)),
        "counterfactual_flip_rate": float(rng.uniform(0.0, 0.9)),
    }


def write_group_folder(
    root: Path,
    *,
    dataset: str = "utkface",
    methods: Sequence[str] = GROUP_METHODS,
    pairs: Sequence[tuple[str, str]] = (("gender", "race"),),
    seeds: Sequence[int] = (0,),
    groups: Sequence[str] = GROUP_NAMES,
    epochs: int = 4,
    projection_points: int = 300,
    name: str = "utkface-fairness",
) -> Path:
    """Write a group-fairness protocol's results (method × attribute pair × seed)."""
    runs: list[RunRecord] = []
    for m, method in enumerate(methods):
        for p, (target, sensitive) in enumerate(pairs):
            for seed in seeds:
                rng = np.random.default_rng([100 + m, p, seed])
                run_id = _safe(f"{method}-{target}-{sensitive}-seed{seed}")
                table = _group_table(rng, groups)
                accuracy = float(np.average(table["accuracy"], weights=table["count"]))
                tpr, fpr, sel = (table[c].to_numpy() for c in ("tpr", "fpr", "selection_rate"))
                metrics: dict[str, float] = {
                    "accuracy": accuracy,
                    "worst_group_accuracy": float(table["accuracy"].min()),
                    "demographic_parity_difference": float(np.ptp(sel)),
                    "equalized_odds_difference": float(max(np.ptp(tpr), np.ptp(fpr))),
                    "equal_opportunity_difference": float(np.ptp(tpr)),
                    "eo_fscl": float(0.5 * (np.ptp(tpr) + np.ptp(fpr))),
                }
                for key in list(metrics):
                    width = float(rng.uniform(0.005, 0.03))
                    metrics[f"{key}_ci_low"] = max(0.0, metrics[key] - width)
                    metrics[f"{key}_ci_high"] = min(1.0, metrics[key] + width)
                run = RunRecord(run_id, method, method, dataset, "group", target=target, sensitive=sensitive, seed=seed)
                folder = _write_run(root, run, rng, epochs, projection_points, classes=2, groups=len(groups))
                table.to_csv(folder / GROUP_TABLE_FILE, index=False)
                runs.append(_finish(folder, run, metrics, names=(target, sensitive)))
    protocol = {
        "name": name,
        "seeds": list(seeds),
        "data": {"dataset": dataset, "targets": [t for t, _ in pairs]},
        "encoder": {"arch": "resnet18"},
        "methods": [{"name": method} for method in methods],
        "train": {"epochs": epochs},
        "probe": {"epochs": 10},
        "report": True,
    }
    _write_top(root, protocol, runs)
    return root


def write_audit_folder(root: Path, *, encoder: str = "my_encoder") -> Path:
    """Write what an audit saves: one run, no training history, no ``train`` section."""
    rng = np.random.default_rng(7)
    table = _group_table(rng, GROUP_NAMES[:2])
    metrics = {
        "accuracy": 0.81,
        "worst_group_accuracy": 0.7,
        "demographic_parity_difference": 0.12,
        "equalized_odds_difference": 0.09,
        "equal_opportunity_difference": 0.05,
        "eo_fscl": 0.06,
    }
    run = RunRecord(encoder, encoder, None, "celeba", "group", target="Attractive", sensitive="Male", seed=0)
    run = run.with_facts({"encoder": encoder, "group_names": list(GROUP_NAMES[:2])}).finish(metrics)
    folder = run_dir(root, encoder)
    run.write(folder)
    table.to_csv(folder / GROUP_TABLE_FILE, index=False)
    _projection(rng, 200, 2, 2).to_csv(folder / PROJECTION_FILE, index=False)
    protocol = {
        "name": f"audit of {encoder}",
        "data": {"dataset": "celeba"},
        "methods": [{"name": encoder}],
    }
    _write_top(root, protocol, [run])
    return root


def remove(root: Path, *relative: str) -> None:
    """Delete files of a results folder, as an interrupted run would have left it."""
    for path in relative:
        (root / path).unlink()


def _finish(
    folder: Path,
    run: RunRecord,
    metrics: dict[str, float],
    *,
    names: tuple[str, str],
    colours: Sequence[str] | None = None,
) -> RunRecord:
    """Write the run's record, complete with its metrics and what its dataset says about it."""
    facts: dict[str, Any] = {"target_name": names[0], "sensitive_name": names[1], "encoder": "small_conv"}
    if colours is not None:
        facts["group_colours"] = list(colours)
    record = run.with_facts(facts).finish(metrics)
    record.write(folder)
    return record


def _write_run(
    root: Path,
    run: RunRecord,
    rng: np.random.Generator,
    epochs: int,
    projection_points: int,
    *,
    classes: int,
    groups: int,
) -> Path:
    """A run's folder with its history, projection and checkpoint (its record comes last, see :func:`_finish`)."""
    folder = run_dir(root, run.run_id)
    folder.mkdir(parents=True)
    _history(rng, epochs).to_csv(folder / HISTORY_FILE, index=False)
    _projection(rng, projection_points, classes, groups).to_csv(
        folder / PROJECTION_FILE, index=False, float_format="%.5g"
    )
    (folder / CHECKPOINT_FILE).write_bytes(b"\x00" * 64)
    return folder


def _write_top(root: Path, protocol: dict[str, Any], runs: list[RunRecord]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / PROTOCOL_FILE).write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    _write_json(
        root / MANIFEST_FILE,
        {
            "ceco_fair": "0.1.0",
            "python": "3.11.9",
            "packages": {"torch": "2.14.1", "numpy": "2.4.6", "plotly": "7.1.0"},
            "git_revision": None,
            "device": "cpu",
            "started": "2025-01-01T10:00:00+00:00",
            "finished": "2025-01-01T10:05:00+00:00",
            "hostname": "example-host",
        },
    )
    write_results(root, runs)


def _safe(name: str) -> str:
    """A folder name from a run id: characters other than letters, digits, ``_.-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def _bias_matrix(rng: np.random.Generator, *, strength: float) -> np.ndarray:
    """Accuracy per (digit, colour): the diagonal near 1, the rest lower; one empty cell."""
    matrix = np.clip(strength + rng.normal(0.0, 0.08, (BIAS_CLASSES, BIAS_CLASSES)), 0.0, 1.0)
    matrix[np.diag_indices(BIAS_CLASSES)] = rng.uniform(0.95, 1.0, BIAS_CLASSES)
    matrix[3, 7] = np.nan
    return matrix.round(6)


def _group_table(rng: np.random.Generator, groups: Sequence[str]) -> pd.DataFrame:
    count = rng.integers(80, 400, len(groups))
    rows: dict[str, Any] = {
        "group": list(range(len(groups))),
        "group_name": list(groups),
        "count": count,
    }
    for rate, low, high in (
        ("accuracy", 0.7, 0.9),
        ("tpr", 0.6, 0.95),
        ("fpr", 0.05, 0.3),
        ("selection_rate", 0.3, 0.6),
    ):
        values = rng.uniform(low, high, len(groups))
        width = rng.uniform(0.01, 0.05, len(groups))
        rows[rate] = values.round(6)
        rows[f"{rate}_ci_low"] = np.clip(values - width, 0, 1).round(6)
        rows[f"{rate}_ci_high"] = np.clip(values + width, 0, 1).round(6)
    return pd.DataFrame(rows)


def _history(rng: np.random.Generator, epochs: int) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1, dtype=float)
    table = pd.DataFrame(
        {
            "epoch": epoch,
            "loss": (4.0 * np.exp(-epoch / 4) + 1.0 + rng.uniform(0, 0.05, epochs)).round(6),
            "lr": np.full(epochs, 0.05),
            "seconds": rng.uniform(5, 6, epochs).round(3),
            "images_per_s": rng.uniform(9000, 11000, epochs).round(1),
        }
    )
    return table


def _projection(rng: np.random.Generator, points: int, classes: int, groups: int) -> pd.DataFrame:
    target = rng.integers(0, classes, points)
    centres = rng.normal(0, 5, (classes, 2))
    xy = centres[target] + rng.normal(0, 1, (points, 2))
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "target": target,
            "sensitive": rng.integers(0, groups, points),
        }
    )
