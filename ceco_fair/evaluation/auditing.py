"""Audit any encoder: frozen features, a linear probe, and bias / group-fairness metrics.

``audit`` is the evaluation half of every protocol run, open to encoders trained anywhere: a
torchvision ResNet-18, a checkpoint from another toolkit, or any callable that maps an image batch
to features. ``audit_features`` starts from features computed elsewhere.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.decomposition import PCA
from torch import nn
from torch.utils.data import Dataset

from ceco_fair.common.io import atomic_write_json, atomic_write_text
from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import FairnessDataset
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.diagnostics import (
    Views,
    colour_strip,
    counterfactual_diagnostics,
    dataset_counterfactuals,
    feature_diagnostics,
    view_features,
)
from ceco_fair.evaluation.probe import Features, ProbeConfig, extract_features, train_linear_probe
from ceco_fair.evaluation.readouts import Head, head_predictions, train_balanced_probe
from ceco_fair.metrics import bias_accuracy_matrix, bias_metrics, group_metrics, group_table
from ceco_fair.results.layout import (
    BALANCED_READOUT,
    BIAS_MATRIX_FILE,
    COLOUR_STRIP_FILE,
    COUNTERFACTUAL_FILE,
    GROUP_TABLE_FILE,
    HEAD_READOUT,
    LINEAR_READOUT,
    MANIFEST_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    PROJECTION_FILE,
    PROTOCOL_FILE,
    READOUT_COLUMN,
    READOUTS_FILE,
    RUN_FILE,
    STATUS_COMPLETE,
    run_dir,
    run_fields,
)
from ceco_fair.results.manifest import build_manifest, now
from ceco_fair.training.batches import as_long

logger = logging.getLogger(__name__)

MetricKind = Literal["auto", "bias", "group"]

AUDIT_VIEW_AUGMENT = AugmentConfig(crop_scale=(0.6, 1.0), rotation=10.0)
"""The default augmentation of an audit's two views: a random resized crop (60–100% of the area, aspect
3/4–4/3) and a rotation of up to ±10°, no colour change (the quickstart's training augmentation)."""
ArrayLike = np.ndarray | torch.Tensor | Sequence[int] | Sequence[float]


@dataclass
class AuditResult:
    """What an audit found.

    Attributes:
        metrics: metric name -> value (fractions; ``*_ci_low`` / ``*_ci_high`` with a bootstrap).
        kind: ``bias`` (BiasedMNIST-style bias-aligned / conflicting accuracies) or ``group``.
        predictions: one row per test sample: ``target``, ``sensitive``, ``prediction``.
        projection: 2-D PCA of (a subsample of) the test features: ``x``, ``y``, ``target``, ``sensitive``.
        group_table: per-group counts, accuracy, TPR, FPR, selection rate (group metrics only).
        bias_matrix: accuracy per (class, bias value) cell, ``[n_classes, n_bias]`` (bias metrics only).
        info: names and settings (encoder, dataset, target, sensitive, group names).
        counterfactual: the probe's prediction for every test image on every background colour ``[n_test, K]``
            (recolourable datasets only); written as ``counterfactual.csv``, one row per (image, colour).
        strip: a few test digits rendered on every colour, for the report (recolourable datasets only).
        readouts: the bias / fairness metrics of the other read-outs, ``{"balanced": {...}, "head": {...}}``
            (:mod:`ceco_fair.evaluation.readouts`); ``metrics`` are the ``linear`` read-out's.
    """

    metrics: dict[str, float]
    kind: Literal["bias", "group"]
    predictions: pd.DataFrame
    projection: pd.DataFrame
    group_table: pd.DataFrame | None = None
    bias_matrix: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    counterfactual: np.ndarray | None = None
    strip: dict[str, Any] | None = None
    readouts: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The metrics as a tidy table: one row per read-out × metric, columns ``readout``, ``metric``, ``value``."""
        every = {LINEAR_READOUT: self.metrics, **self.readouts}
        return pd.DataFrame(
            [
                {READOUT_COLUMN: readout, "metric": metric, "value": float(value)}
                for readout, metrics in every.items()
                for metric, value in metrics.items()
            ],
            columns=[READOUT_COLUMN, "metric", "value"],
        )

    def write_run_files(self, folder: Path) -> None:
        """Write the per-run files (metrics, tables, predictions, projection) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / METRICS_FILE, self.metrics)
        if self.readouts:
            atomic_write_json(folder / READOUTS_FILE, self.readouts)
        atomic_write_text(folder / PREDICTIONS_FILE, self.predictions.to_csv(index=False))
        atomic_write_text(folder / PROJECTION_FILE, self.projection.to_csv(index=False, float_format="%.5g"))
        if self.group_table is not None:
            atomic_write_text(folder / GROUP_TABLE_FILE, self.group_table.to_csv(index=False))
        if self.bias_matrix is not None:
            frame = pd.DataFrame(self.bias_matrix, index=pd.Index(range(len(self.bias_matrix)), name="target"))
            atomic_write_text(folder / BIAS_MATRIX_FILE, frame.to_csv())
        if self.counterfactual is not None:
            table = counterfactual_table(
                self.predictions["target"].to_numpy(), self.predictions["sensitive"].to_numpy(), self.counterfactual
            )
            atomic_write_text(folder / COUNTERFACTUAL_FILE, table.to_csv(index=False))
        if self.strip is not None:
            atomic_write_json(folder / COLOUR_STRIP_FILE, self.strip)

    def save(self, folder: str | Path, *, report: bool = True) -> Path:
        """Save the audit as a one-run results folder (the layout of a protocol run) and its report.

        Args:
            folder: the output folder (created; files in it are replaced atomically).
            report: also write ``report.html``.

        Returns:
            The folder.
        """
        from ceco_fair.results.folder import write_results

        folder = Path(folder)
        name = str(self.info.get("encoder", "audit"))
        run = run_fields(
            {
                **self.info,
                "run_id": name,
                "method": name,
                "dataset": self.info.get("dataset", "custom"),
                "metric_kind": self.kind,
                "seed": 0,
            }
        )
        folder_of_run = run_dir(folder, name)
        self.write_run_files(folder_of_run)
        atomic_write_json(folder_of_run / RUN_FILE, {**self.info, **run})
        protocol = {
            "name": f"audit of {name}",
            "data": {"dataset": run["dataset"]},
            "methods": [{"name": name}],
        }
        atomic_write_text(folder / PROTOCOL_FILE, yaml.safe_dump(protocol, sort_keys=False))
        manifest = self.info.get("manifest") or {}
        atomic_write_json(folder / MANIFEST_FILE, manifest)
        write_results(folder, [{**run, "status": STATUS_COMPLETE, "metrics": self.metrics, "readouts": self.readouts}])
        if report:
            from ceco_fair.report import build_report

            build_report(folder)
        return folder


def _to_numpy(values: ArrayLike, name: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1:
        raise CecoFairError(f"{name}: expected a 1-D array, got shape {tuple(array.shape)}")
    return array


def _features(values: ArrayLike, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else np.asarray(values))
    if tensor.ndim != 2:
        raise CecoFairError(f"{name}: expected features of shape [n, D], got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise CecoFairError(f"{name}: features contain NaN or inf")
    return tensor.float()


def choose_kind(kind: MetricKind, targets: np.ndarray, sensitive: np.ndarray) -> Literal["bias", "group"]:
    """``bias`` when the bias values index the target classes (BiasedMNIST), else ``group``."""
    if kind != "auto":
        return kind
    classes, groups = np.unique(targets), np.unique(sensitive)
    if len(classes) > 2 and np.isin(groups, classes).all():
        return "bias"
    return "group"


def project(features: torch.Tensor, targets: np.ndarray, sensitive: np.ndarray, points: int, seed: int) -> pd.DataFrame:
    """2-D PCA of at most ``points`` randomly chosen rows of ``features [n, D]``."""
    n = len(features)
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=min(points, n), replace=False))
    if len(chosen) < 3 or features.shape[1] < 2:
        coordinates = np.zeros((len(chosen), 2))
    else:
        coordinates = PCA(n_components=2, random_state=seed).fit_transform(features[chosen].numpy())
    return pd.DataFrame(
        {
            "x": coordinates[:, 0],
            "y": coordinates[:, 1],
            "target": targets[chosen],
            "sensitive": sensitive[chosen],
        }
    )


def evaluate_predictions(
    targets: np.ndarray,
    predictions: np.ndarray,
    sensitive: np.ndarray,
    *,
    kind: Literal["bias", "group"],
    n_boot: int,
    confidence: float,
    seed: int,
    group_names: Sequence[str] | None = None,
) -> tuple[dict[str, float], pd.DataFrame | None, np.ndarray | None]:
    """Metrics, per-group table and bias matrix of test predictions (all arrays ``[n]``)."""
    if kind == "bias":
        metrics = bias_metrics(targets, predictions, sensitive)
        return metrics, None, bias_accuracy_matrix(targets, predictions, sensitive)
    binary = set(np.unique(targets).tolist()) <= {0, 1}
    boot = {"n_boot": n_boot, "seed": seed}
    metrics = group_metrics(targets, predictions, sensitive, confidence=confidence, rates=binary, **boot)
    table = group_table(targets, predictions, sensitive, confidence=confidence, rates=binary, **boot)
    if group_names is not None:
        names = list(group_names)
        table.insert(
            1,
            "group_name",
            [names[int(g)] if 0 <= int(g) < len(names) else str(g) for g in table["group"]],
        )
    return metrics, table, None


def audit_features(
    train_features: ArrayLike,
    train_targets: ArrayLike,
    test_features: ArrayLike,
    test_targets: ArrayLike,
    test_sensitive: ArrayLike,
    *,
    n_classes: int | None = None,
    metrics: MetricKind = "auto",
    probe: Literal["linear"] = "linear",
    probe_config: ProbeConfig | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    projection_points: int = 2000,
    device: torch.device | str | None = None,
    info: dict[str, Any] | None = None,
    diagnostics: bool = True,
    views: tuple[ArrayLike, ArrayLike] | None = None,
    counterfactual: ArrayLike | None = None,
    train_sensitive: ArrayLike | None = None,
    balanced_on: Features | None = None,
    head: Head | None = None,
    n_groups: int | None = None,
) -> AuditResult:
    """Audit precomputed features: fit a linear probe on train, measure it on test.

    The bias / fairness metrics are measured through each read-out (:mod:`ceco_fair.evaluation.readouts`):
    ``linear`` always (``metrics``), ``balanced`` when the training sensitive values (or ``balanced_on``)
    are given, ``head`` when ``head`` is (``readouts``).

    With ``diagnostics`` the representation diagnostics of :mod:`ceco_fair.evaluation.diagnostics` are added to
    the metrics: those that the test features allow (variance ratio, uniformity, leakage), retrieval and
    alignment when ``views`` are given, and colour sensitivity when ``counterfactual`` is given.

    Args:
        train_features: ``[n_train, D]`` (numpy or torch).
        train_targets: ``[n_train]`` integer classes.
        test_features: ``[n_test, D]``.
        test_targets: ``[n_test]``.
        test_sensitive: ``[n_test]`` integer sensitive / bias values (at least two groups).
        n_classes: number of classes (default: from the targets).
        metrics: ``bias``, ``group`` or ``auto`` (see :func:`choose_kind`).
        probe: the probe; ``linear`` (standardised features, softmax regression).
        probe_config: the probe's epochs, batch size and learning rate.
        n_boot: bootstrap resamples for the group metrics' confidence intervals (0: none).
        confidence: the intervals' confidence level.
        seed: seeds the probe, the bootstrap and the projection's subsample.
        projection_points: test points kept in the 2-D projection.
        device: where to fit the probe (default: CUDA if available).
        info: names recorded with the result (encoder, dataset, target, sensitive, group_names).
        diagnostics: add the representation diagnostics to the metrics.
        views: features ``[n_test, D]`` of two augmentations of the test images, in test order.
        counterfactual: features ``[n_test, K, D]`` of every test image on each of K background colours.
        train_sensitive: ``[n_train]`` sensitive values of the training features (the balanced read-out's cells).
        balanced_on: features, targets and sensitive values to fit the balanced read-out on instead of
            the training features (a validation split).
        head: a trained classifier mapping features ``[n, D]`` to logits ``[n, C]`` (the method's own).
        n_groups: number of sensitive groups (default: the largest value + 1).

    Raises:
        CecoFairError: mismatched lengths, a single sensitive group, a non-binary target where the group
            metrics need one, features that are not ``[n, D]`` or not finite.
    """
    if probe != "linear":
        raise CecoFairError(f"probe: expected 'linear', got {probe!r}")
    train_x, test_x = (
        _features(train_features, "train_features"),
        _features(test_features, "test_features"),
    )
    if train_x.shape[1] != test_x.shape[1]:
        raise CecoFairError(
            f"test_features: expected {train_x.shape[1]} features like train_features, got {test_x.shape[1]}"
        )
    train_y = _to_numpy(train_targets, "train_targets").astype(np.int64)
    test_y = _to_numpy(test_targets, "test_targets").astype(np.int64)
    test_s = _to_numpy(test_sensitive, "test_sensitive").astype(np.int64)
    for name, features, values in (
        ("train_targets", train_x, train_y),
        ("test_targets", test_x, test_y),
        ("test_sensitive", test_x, test_s),
    ):
        if len(values) != len(features):
            raise CecoFairError(f"{name}: {len(values)} values for {len(features)} feature rows")
    if len(np.unique(test_s)) < 2:
        raise CecoFairError(
            f"test_sensitive: only one group ({int(test_s[0]) if len(test_s) else 'none'}) in the "
            "test set; fairness needs at least two"
        )
    kind = choose_kind(metrics, test_y, test_s)
    if kind == "group" and metrics == "group" and not set(np.unique(test_y).tolist()) <= {0, 1}:
        raise CecoFairError(
            f"test_targets: the group metrics need a binary target (0/1), got classes "
            f"{sorted(np.unique(test_y).tolist())[:10]}"
        )
    n_classes = n_classes or int(max(train_y.max(initial=0), test_y.max(initial=0)) + 1)
    chosen_device = torch.device(device) if device is not None else default_device()
    config = probe_config or ProbeConfig()
    fitted = train_linear_probe(
        Features(train_x, torch.from_numpy(train_y), torch.zeros(len(train_y))),
        n_classes,
        config,
        seed=seed,
        device=chosen_device,
    )
    predictions = fitted.predict(test_x).numpy()
    info = dict(info or {})
    evaluate = functools.partial(
        evaluate_predictions,
        kind=kind,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        group_names=info.get("group_names"),
    )
    scores, table, matrix = evaluate(test_y, predictions, test_s)
    readouts: dict[str, dict[str, float]] = {}
    balanced_train = balanced_on
    if balanced_train is None and train_sensitive is not None:
        train_s = torch.from_numpy(_to_numpy(train_sensitive, "train_sensitive").astype(np.int64))
        if len(train_s) != len(train_x):
            raise CecoFairError(f"train_sensitive: {len(train_s)} values for {len(train_x)} feature rows")
        balanced_train = Features(train_x, torch.from_numpy(train_y), train_s)
    if balanced_train is not None:
        balanced = train_balanced_probe(
            balanced_train, n_classes, config, seed=seed, device=chosen_device, n_groups=n_groups
        )
        readouts[BALANCED_READOUT] = evaluate(test_y, balanced.predict(test_x).numpy(), test_s)[0]
    if head is not None:
        readouts[HEAD_READOUT] = evaluate(test_y, head_predictions(head, test_x, chosen_device).numpy(), test_s)[0]
    frame = pd.DataFrame({"target": test_y, "sensitive": test_s, "prediction": predictions})
    recoloured: np.ndarray | None = None
    if diagnostics:
        view_pair = None
        if views is not None:
            view_pair = Views(_features(views[0], "views[0]"), _features(views[1], "views[1]"))
            for name, tensor in (("views[0]", view_pair.first), ("views[1]", view_pair.second)):
                if tensor.shape != test_x.shape:
                    raise CecoFairError(
                        f"{name}: expected {tuple(test_x.shape)} like test_features, got {tuple(tensor.shape)}"
                    )
        scores.update(feature_diagnostics(test_x, test_y, test_s, seed=seed, views=view_pair))
        if counterfactual is not None:
            counterfactual_x = _counterfactual(counterfactual, test_x.shape)
            found, recoloured = counterfactual_diagnostics(counterfactual_x, predictions, fitted.predict)
            scores.update(found)
    return AuditResult(
        scores,
        kind,
        frame,
        project(test_x, test_y, test_s, projection_points, seed),
        table,
        matrix,
        info,
        recoloured,
        readouts=readouts,
    )


def _counterfactual(values: ArrayLike, test_shape: torch.Size) -> torch.Tensor:
    tensor = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else np.asarray(values))
    if tensor.ndim != 3 or tensor.shape[0] != test_shape[0] or tensor.shape[2] != test_shape[1]:
        raise CecoFairError(
            f"counterfactual: expected features [{test_shape[0]}, K, {test_shape[1]}], got {tuple(tensor.shape)}"
        )
    return tensor.float()


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


def split_features(
    encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    train: Dataset[Any],
    test: Dataset[Any],
    *,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    normalization: AugmentConfig | None,
    progress: bool,
    label: str = "",
) -> tuple[Features, Features]:
    """Frozen features of the training and test datasets, each ``[n, D]`` with targets and sensitive values."""

    def features_of(dataset: Dataset[Any], split: str) -> Features:
        return extract_features(
            encoder,
            dataset,
            device=device,
            batch_size=batch_size,
            num_workers=num_workers,
            normalization=normalization,
            progress=progress,
            description=f"{label} {split} features".strip(),
        )

    return features_of(train, "train"), features_of(test, "test")


def dataset_info(dataset: object) -> dict[str, Any]:
    """What a dataset says about itself, for the run record.

    Args:
        dataset: a split; one outside :class:`~ceco_fair.data.base.FairnessDataset` says nothing.

    Returns:
        ``metric_kind``, ``target_name``, ``sensitive_name``, ``class_names``, ``group_names``
        and, when the dataset has them, ``group_colours`` (an empty mapping for a dataset
        outside the protocol).
    """
    if not isinstance(dataset, FairnessDataset):
        return {}
    info = {
        "metric_kind": dataset.metric_kind,
        "target_name": dataset.target_name,
        "sensitive_name": dataset.sensitive_name,
        "class_names": list(dataset.class_names),
        "group_names": list(dataset.group_names),
    }
    colours = getattr(dataset, "group_colours", None)  # an optional member
    return {**info, "group_colours": list(colours)} if colours is not None else info


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def audit(
    encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    train: Dataset[Any],
    test: Dataset[Any],
    *,
    target: str | None = None,
    sensitive: str | None = None,
    probe: Literal["linear"] = "linear",
    device: torch.device | str | None = None,
    metrics: MetricKind = "auto",
    probe_config: ProbeConfig | None = None,
    normalization: AugmentConfig | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batch_size: int = 256,
    num_workers: int = 0,
    name: str | None = None,
    progress: bool = True,
    diagnostics: bool = True,
    view_augment: AugmentConfig | None = None,
) -> AuditResult:
    """Audit an encoder: features of ``train`` and ``test``, a linear probe, and fairness metrics.

    The metrics are measured through the ``linear`` probe (``result.metrics``) and through the
    ``balanced`` one, fitted with every (target, sensitive) cell of ``train`` weighted equally
    (``result.readouts["balanced"]``).

    With ``diagnostics``, the representation diagnostics are measured on ``test`` too: two views of every
    test image made with ``view_augment`` (default :data:`AUDIT_VIEW_AUGMENT`, seeded by ``seed``) and,
    for coloured digits, every test image re-rendered on each background colour.

    Args:
        encoder: a ``torch.nn.Module`` or callable mapping images ``[B, 3, H, W]`` to features ``[B, D]``.
        train: a dataset yielding ``(image, target, sensitive)``; the probe is fitted on it.
        test: a dataset yielding ``(image, target, sensitive)``; the metrics are measured on it.
        target: the target's name for the report (default: the dataset's ``target_name``).
        sensitive: the sensitive attribute's name (default: the dataset's ``sensitive_name``).
        probe: the probe; ``linear``.
        device: where to run the encoder and the probe (default: CUDA if available).
        metrics: ``bias``, ``group`` or ``auto`` (the dataset's ``metric_kind`` when it implements
            :class:`~ceco_fair.data.base.FairnessDataset`, else :func:`choose_kind`).
        probe_config: the probe's settings.
        normalization: mean and std applied to images in [0, 1] before the encoder (default 0.5 / 0.5).
        n_boot: bootstrap resamples for confidence intervals.
        confidence: the intervals' confidence level.
        seed: seeds the probe, bootstrap and projection.
        batch_size: images per forward pass.
        num_workers: loader workers for datasets that decode from disk.
        name: the encoder's name in the results (default: its class name).
        progress: show progress bars.
        diagnostics: measure the representation diagnostics.
        view_augment: the augmentation of the two views (its mean / std replace ``normalization``'s).

    Returns:
        An :class:`AuditResult`; ``.save(folder)`` writes the results and an HTML report.
    """
    if not callable(encoder):
        raise CecoFairError(f"encoder: expected a torch.nn.Module or a callable, got {type(encoder).__name__}")
    chosen_device = torch.device(device) if device is not None else default_device()
    if isinstance(encoder, nn.Module):
        encoder = encoder.to(chosen_device)
    started = now()
    train_features, test_features = split_features(
        encoder,
        train,
        test,
        device=chosen_device,
        batch_size=batch_size,
        num_workers=num_workers,
        normalization=normalization,
        progress=progress,
    )
    name = name or type(encoder).__name__
    described = dataset_info(test)
    info = {
        **described,
        "encoder": name,
        "dataset": type(test).__name__,
        "target": target or described.get("target_name"),
        "sensitive": sensitive or described.get("sensitive_name"),
        "manifest": {**build_manifest(chosen_device), "started": started, "finished": now()},
    }
    if metrics == "auto" and "metric_kind" in described:
        metrics = described["metric_kind"]
    views, counterfactual = None, None
    if diagnostics:
        base = normalization or AugmentConfig()
        augment = view_augment or dataclasses.replace(AUDIT_VIEW_AUGMENT, mean=base.mean, std=base.std)
        views = view_features(
            encoder,
            test,
            augment,
            seed=seed,
            device=chosen_device,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
        )
        counterfactual = dataset_counterfactuals(
            encoder, test, device=chosen_device, batch_size=batch_size, normalization=normalization
        )
    result = audit_features(
        train_features.features,
        as_long(train_features.targets),
        test_features.features,
        as_long(test_features.targets),
        as_long(test_features.sensitive),
        train_sensitive=as_long(train_features.sensitive),
        n_classes=test.n_classes if isinstance(test, FairnessDataset) else None,
        n_groups=test.n_groups if isinstance(test, FairnessDataset) else None,
        metrics=metrics,
        probe=probe,
        probe_config=probe_config,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        device=chosen_device,
        info=info,
        diagnostics=diagnostics,
        views=(views.first, views.second) if views is not None else None,
        counterfactual=counterfactual,
    )
    attach_strip(result, test)
    return result


def attach_strip(result: AuditResult, test: Dataset[Any]) -> None:
    """Add the report's colour strip of the first test digit when the audit measured colour sensitivity."""
    if result.counterfactual is not None:
        result.strip = colour_strip(test, result.counterfactual)
