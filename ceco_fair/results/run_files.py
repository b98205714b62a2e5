"""Writing a run's files, and a results folder that holds a single run (a saved audit).

A protocol run (:mod:`ceco_fair.runner.experiment`) and :meth:`ceco_fair.AuditResult.save` write the
measured tables with :func:`write_run_files`; an audit saved on its own becomes a one-run results folder,
the layout of a protocol run, with :func:`write_single_run_folder`. What is written comes in as plain
tables (any object with the members of :class:`RunOutputs`); torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from ceco_fair.common.io import atomic_write_json, atomic_write_text
from ceco_fair.results.folder import write_results
from ceco_fair.results.layout import (
    BIAS_MATRIX_FILE,
    COLOUR_STRIP_FILE,
    COUNTERFACTUAL_FILE,
    GROUP_TABLE_FILE,
    MANIFEST_FILE,
    PREDICTIONS_FILE,
    PROJECTION_FILE,
    PROTOCOL_FILE,
    READOUT_COLUMN,
    SCORE_PREFIX,
    SCORES_COLUMNS,
    SCORES_FILE,
    run_dir,
)
from ceco_fair.results.record import RunRecord


class RunOutputs(Protocol):
    """What a run measured (see :class:`ceco_fair.AuditResult` for each member)."""

    @property
    def metrics(self) -> Mapping[str, float]:
        """Metric name -> value."""

    @property
    def predictions(self) -> pd.DataFrame:
        """One row per test sample: ``target``, ``sensitive``, ``prediction``."""

    @property
    def scores(self) -> Mapping[str, np.ndarray]:
        """Read-out -> class probabilities of the test samples ``[n_test, C]``."""

    @property
    def readout_predictions(self) -> Mapping[str, np.ndarray]:
        """Read-out -> classes of the test samples ``[n_test]``."""

    @property
    def projection(self) -> pd.DataFrame:
        """2-D projection of the test features: ``x``, ``y``, ``target``, ``sensitive``."""

    @property
    def group_table(self) -> pd.DataFrame | None:
        """Per-group counts and rates (group metrics only)."""

    @property
    def bias_matrix(self) -> np.ndarray | None:
        """Accuracy per (class, bias value) cell ``[n_classes, n_bias]`` (bias metrics only)."""

    @property
    def counterfactual(self) -> np.ndarray | None:
        """Predictions of every test image on every background colour ``[n_test, K]``."""

    @property
    def strip(self) -> dict[str, Any] | None:
        """A few test digits rendered on every colour, for the report."""


def counterfactual_table(targets: np.ndarray, sensitive: np.ndarray, under_colour: np.ndarray) -> pd.DataFrame:
    """One row per (test image, colour) of the predictions ``[n, K]``: index, target, sensitive, colour, prediction."""
    n, k = under_colour.shape
    return pd.DataFrame(
        {
            "index": np.repeat(np.arange(n), k),
            "target": np.repeat(targets, k),
            "sensitive": np.repeat(sensitive, k),
            "colour": np.tile(np.arange(k), n),
            "prediction": under_colour.reshape(-1),
        }
    )


def scores_table(
    predictions: pd.DataFrame, readout_predictions: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """``scores.csv``: one row per (read-out, test sample), see :data:`~ceco_fair.results.layout.SCORES_FILE`.

    Args:
        predictions: ``predictions.csv``'s rows (``target``, ``sensitive``), in test order.
        readout_predictions: read-out -> classes ``[n]``, in measuring order.
        scores: read-out -> class probabilities ``[n, C]`` (the same read-outs).
    """
    n = len(predictions)
    parts = []
    for readout, probabilities in scores.items():
        leading = dict.fromkeys(SCORES_COLUMNS)
        leading.update(
            {
                READOUT_COLUMN: [readout] * n,
                "index": np.arange(n),
                "target": predictions["target"].to_numpy(),
                "sensitive": predictions["sensitive"].to_numpy(),
                "prediction": readout_predictions[readout],
            }
        )
        columns = {f"{SCORE_PREFIX}{c}": probabilities[:, c] for c in range(probabilities.shape[1])}
        parts.append(pd.DataFrame({**leading, **columns}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SCORES_COLUMNS))


def write_run_files(folder: Path, outputs: RunOutputs) -> None:
    """Write the per-run files (tables, predictions, projection) into ``folder``, atomically.

    The metrics go into the run's record (:class:`~ceco_fair.results.record.RunRecord`), with its status.
    """
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / PREDICTIONS_FILE, outputs.predictions.to_csv(index=False))
    if outputs.scores:
        table = scores_table(outputs.predictions, outputs.readout_predictions, outputs.scores)
        atomic_write_text(folder / SCORES_FILE, table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(folder / PROJECTION_FILE, outputs.projection.to_csv(index=False, float_format="%.5g"))
    if outputs.group_table is not None:
        atomic_write_text(folder / GROUP_TABLE_FILE, outputs.group_table.to_csv(index=False))
    if outputs.bias_matrix is not None:
        matrix = outputs.bias_matrix
        frame = pd.DataFrame(matrix, index=pd.Index(range(len(matrix)), name="target"))
        atomic_write_text(folder / BIAS_MATRIX_FILE, frame.to_csv())
    if outputs.counterfactual is not None:
        predictions = outputs.predictions
        table = counterfactual_table(
            predictions["target"].to_numpy(), predictions["sensitive"].to_numpy(), outputs.counterfactual
        )
        atomic_write_text(folder / COUNTERFACTUAL_FILE, table.to_csv(index=False))
    if outputs.strip is not None:
        atomic_write_json(folder / COLOUR_STRIP_FILE, outputs.strip)


def write_single_run_folder(
    folder: Path,
    outputs: RunOutputs,
    record: RunRecord,
    *,
    protocol: Mapping[str, Any],
    manifest: Mapping[str, Any],
) -> Path:
    """Write a results folder holding one completed run.

    Args:
        folder: the results folder (created; files in it are replaced atomically).
        outputs: the run's tables.
        record: the run's complete record, metrics included.
        protocol: what ``protocol.yaml`` records (the settings that produced the run).
        manifest: the environment, for ``manifest.json``.

    Returns:
        The run's folder, ``folder/runs/<run_id>``.
    """
    folder_of_run = run_dir(folder, record.run_id)
    write_run_files(folder_of_run, outputs)
    record.write(folder_of_run)
    atomic_write_text(folder / PROTOCOL_FILE, yaml.safe_dump(dict(protocol), sort_keys=False))
    atomic_write_json(folder / MANIFEST_FILE, dict(manifest))
    write_results(folder, [record])
    return folder_of_run
