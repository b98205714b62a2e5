"""Audit any encoder: frozen features, a linear probe, and bias / group-fairness metrics.

The public API: :func:`audit` is the evaluation half of every protocol run, open to encoders trained
anywhere (a torchvision ResNet-18, a checkpoint from another toolkit, or any callable that maps an image
batch to features); :func:`audit_features` starts from features computed elsewhere. Both take their
settings as one :class:`AuditOptions`, which reuses a protocol's ``probe`` and ``eval`` sections. The
measuring steps live in :mod:`ceco_fair.evaluation.measure`, the files in
:mod:`ceco_fair.results.run_files`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from ceco_fair.common.config import closest, to_plain
from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import FairnessDataset, ImageDataset, Recolourable
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.diagnostics import (
    Views,
    colour_strip,
    counterfactual_diagnostics,
    dataset_counterfactuals,
    feature_diagnostics,
    view_features,
)
from ceco_fair.evaluation.eval_config import EvalConfig
from ceco_fair.evaluation.measure import (
    AuditKind,
    choose_kind,
    dataset_info,
    evaluate_predictions,
    project,
    split_features,
)
from ceco_fair.evaluation.probe import Encoder, Features, ProbeConfig, train_linear_probe
from ceco_fair.evaluation.readouts import Head, head_predictions, train_balanced_probe
from ceco_fair.results.layout import BALANCED_READOUT, HEAD_READOUT, LINEAR_READOUT, READOUT_COLUMN, MetricKind
from ceco_fair.results.manifest import build_manifest, now
from ceco_fair.results.record import RunRecord
from ceco_fair.results.run_files import write_run_files, write_single_run_folder
from ceco_fair.training.batches import as_long
from ceco_fair.training.device import choose_device

logger = logging.getLogger(__name__)

AUDIT_VIEW_AUGMENT = AugmentConfig(crop_scale=(0.6, 1.0), rotation=10.0)
"""The default augmentation of an audit's two views: a random resized crop (60–100% of the area, aspect
3/4–4/3) and a rotation of up to ±10°, no colour change (the quickstart's training augmentation)."""
ArrayLike = np.ndarray | torch.Tensor | Sequence[int] | Sequence[float]

EVAL_KEYWORDS = ("n_boot", "confidence", "projection_points", "batch_size")
"""Keywords of :func:`audit` / :func:`audit_features` that set a field of :attr:`AuditOptions.eval`."""


@dataclass(frozen=True)
class AuditOptions:
    """How an audit measures: the probe, the evaluation settings and the run's conditions.

    Attributes:
        probe: the linear probe's epochs, batch size and learning rate (a protocol's ``probe`` section).
        eval: the bootstrap (``n_boot``, ``confidence``), the projection's ``projection_points`` and the
            encoder's ``batch_size`` (a protocol's ``eval`` section; its tracking and baseline keys
            concern protocol runs only).
        metrics: ``bias``, ``group`` or ``auto`` (the dataset's ``metric_kind`` when it implements
            :class:`~ceco_fair.data.base.FairnessDataset`, else
            :func:`~ceco_fair.evaluation.measure.choose_kind`).
        readout: the read-out fitted on the frozen features; ``linear`` (standardised features,
            softmax regression).
        seed: seeds the probe, the bootstrap, the projection's subsample and the two views.
        device: where to run the encoder and the probe (``auto`` / None: CUDA if available).
        normalization: mean and std applied to images in [0, 1] before the encoder (default 0.5 / 0.5).
        diagnostics: also measure the representation diagnostics.
        view_augment: the augmentation of the two views (default :data:`AUDIT_VIEW_AUGMENT` with the
            mean / std of ``normalization``).
        num_workers: loader workers for datasets that decode from disk.
        progress: show progress bars.
    """

    probe: ProbeConfig = field(default_factory=ProbeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    metrics: AuditKind = "auto"
    readout: Literal["linear"] = "linear"
    seed: int = 0
    device: torch.device | str | None = None
    normalization: AugmentConfig | None = None
    diagnostics: bool = True
    view_augment: AugmentConfig | None = None
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.metrics not in ("auto", "bias", "group"):
            raise CecoFairError(f"metrics: expected 'auto', 'bias' or 'group', got {self.metrics!r}")
        if self.readout != "linear":
            raise CecoFairError(f"probe: expected 'linear', got {self.readout!r}")
        if self.num_workers < 0:
            raise CecoFairError(f"num_workers: expected >= 0, got {self.num_workers}")

    def with_keywords(self, **keywords: Any) -> AuditOptions:
        """These options with single settings replaced, by the keyword names :func:`audit` accepts.

        A field name replaces that field; ``n_boot``, ``confidence``, ``projection_points`` and
        ``batch_size`` replace fields of :attr:`eval`; ``probe_config`` is :attr:`probe`, and ``probe``
        given as a string (``"linear"``) is :attr:`readout`.

        Raises:
            CecoFairError: a keyword that names no option (with the closest valid one), or an invalid value.
        """
        top: dict[str, Any] = {}
        evaluation: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in keywords.items():
            if key in EVAL_KEYWORDS:
                evaluation[key] = value
            elif key == "probe_config":
                top["probe"] = value if value is not None else ProbeConfig()
            elif key == "probe" and isinstance(value, str):
                top["readout"] = value
            elif key in names:
                top[key] = value
            else:
                valid = (*names, *EVAL_KEYWORDS, "probe_config")
                raise CecoFairError(f"{key}: not an audit option{closest(key, valid)}")
        if evaluation:
            top["eval"] = dataclasses.replace(top.get("eval", self.eval), **evaluation)
        return dataclasses.replace(self, **top) if top else self

    def resolved_device(self) -> torch.device:
        """The device named by :attr:`device` (``auto`` / None: CUDA when available, else the CPU)."""
        return choose_device(self.device)

    def views_augment(self) -> AugmentConfig:
        """The two views' augmentation: :attr:`view_augment`, else :data:`AUDIT_VIEW_AUGMENT` normalised alike."""
        if self.view_augment is not None:
            return self.view_augment
        base = self.normalization or AugmentConfig()
        return dataclasses.replace(AUDIT_VIEW_AUGMENT, mean=base.mean, std=base.std)


def _options(options: AuditOptions | None, keywords: dict[str, Any]) -> AuditOptions:
    return (options or AuditOptions()).with_keywords(**keywords)


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
        options: the settings the audit ran with (recorded in the saved folder's ``protocol.yaml``).
        readouts: the bias / fairness metrics of the other read-outs, ``{"balanced": {...}, "head": {...}}``
            (:mod:`ceco_fair.evaluation.readouts`); ``metrics`` are the ``linear`` read-out's.
    """

    metrics: dict[str, float]
    kind: MetricKind
    predictions: pd.DataFrame
    projection: pd.DataFrame
    group_table: pd.DataFrame | None = None
    bias_matrix: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    counterfactual: np.ndarray | None = None
    strip: dict[str, Any] | None = None
    options: AuditOptions | None = None
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
        write_run_files(folder, self)

    def save(self, folder: str | Path, *, report: bool = True) -> Path:
        """Save the audit as a one-run results folder (the layout of a protocol run) and its report.

        Args:
            folder: the output folder (created; files in it are replaced atomically).
            report: also write ``report.html``.

        Returns:
            The folder.
        """
        folder = Path(folder)
        name = str(self.info.get("encoder", "audit"))
        options = self.options or AuditOptions()
        facts = {key: value for key, value in self.info.items() if key != "manifest"}
        named = {"run_id": name, "method": name, "metric_kind": self.kind, "seed": options.seed}
        record = (
            RunRecord(name, name, dataset="custom").with_facts({**facts, **named}).finish(self.metrics, self.readouts)
        )
        protocol = {
            "name": f"audit of {name}",
            "seeds": [options.seed],
            "data": {"dataset": record.dataset},
            "methods": [{"name": name}],
            "probe": to_plain(options.probe),
            "eval": {key: getattr(options.eval, key) for key in EVAL_KEYWORDS},
        }
        manifest = self.info.get("manifest") or {}
        write_single_run_folder(folder, self, record, protocol=protocol, manifest=manifest)
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


def _counterfactual(values: ArrayLike, test_shape: torch.Size) -> torch.Tensor:
    tensor = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else np.asarray(values))
    if tensor.ndim != 3 or tensor.shape[0] != test_shape[0] or tensor.shape[2] != test_shape[1]:
        raise CecoFairError(
            f"counterfactual: expected features [{test_shape[0]}, K, {test_shape[1]}], got {tuple(tensor.shape)}"
        )
    return tensor.float()


def _views(views: tuple[ArrayLike, ArrayLike], test_shape: torch.Size) -> Views:
    pair = Views(_features(views[0], "views[0]"), _features(views[1], "views[1]"))
    for name, tensor in (("views[0]", pair.first), ("views[1]", pair.second)):
        if tensor.shape != test_shape:
            raise CecoFairError(f"{name}: expected {tuple(test_shape)} like test_features, got {tuple(tensor.shape)}")
    return pair


def audit_features(
    train_features: ArrayLike,
    train_targets: ArrayLike,
    test_features: ArrayLike,
    test_targets: ArrayLike,
    test_sensitive: ArrayLike,
    options: AuditOptions | None = None,
    *,
    n_classes: int | None = None,
    info: dict[str, Any] | None = None,
    views: tuple[ArrayLike, ArrayLike] | None = None,
    counterfactual: ArrayLike | None = None,
    train_sensitive: ArrayLike | None = None,
    balanced_on: Features | None = None,
    head: Head | None = None,
    n_groups: int | None = None,
    **keywords: Any,
) -> AuditResult:
    """Audit precomputed features: fit a linear probe on train, measure it on test.

    The bias / fairness metrics are measured through each read-out (:mod:`ceco_fair.evaluation.readouts`):
    ``linear`` always (``metrics``), ``balanced`` when the training sensitive values (or ``balanced_on``)
    are given, ``head`` when ``head`` is (``readouts``).

    With ``options.diagnostics`` the representation diagnostics of :mod:`ceco_fair.evaluation.diagnostics`
    are added to the metrics: those that the test features allow (variance ratio, uniformity, leakage),
    retrieval and alignment when ``views`` are given, and colour sensitivity when ``counterfactual`` is given.

    Args:
        train_features: ``[n_train, D]`` (numpy or torch).
        train_targets: ``[n_train]`` integer classes.
        test_features: ``[n_test, D]``.
        test_targets: ``[n_test]``.
        test_sensitive: ``[n_test]`` integer sensitive / bias values (at least two groups).
        options: the probe, evaluation and run settings (default :class:`AuditOptions`).
        n_classes: number of classes (default: from the targets).
        info: names recorded with the result (encoder, dataset, target, sensitive, group_names).
        views: features ``[n_test, D]`` of two augmentations of the test images, in test order.
        counterfactual: features ``[n_test, K, D]`` of every test image on each of K background colours.
        train_sensitive: ``[n_train]`` sensitive values of the training features (the balanced read-out's cells).
        balanced_on: features, targets and sensitive values to fit the balanced read-out on instead of
            the training features (a validation split).
        head: a trained classifier mapping features ``[n, D]`` to logits ``[n, C]`` (the method's own).
        n_groups: number of sensitive groups (default: the largest value + 1).
        **keywords: single options by name, replacing those of ``options`` (see
            :meth:`AuditOptions.with_keywords`: ``n_boot=0``, ``device="cpu"``, ``metrics="group"``, ...).

    Raises:
        CecoFairError: mismatched lengths, a single sensitive group, a non-binary target where the group
            metrics need one, features that are not ``[n, D]`` or not finite, an unknown option.
    """
    options = _options(options, keywords)
    train_x, test_x = _features(train_features, "train_features"), _features(test_features, "test_features")
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
    kind = choose_kind(options.metrics, test_y, test_s)
    if kind == "group" and options.metrics == "group" and not set(np.unique(test_y).tolist()) <= {0, 1}:
        raise CecoFairError(
            f"test_targets: the group metrics need a binary target (0/1), got classes "
            f"{sorted(np.unique(test_y).tolist())[:10]}"
        )
    view_pair = _views(views, test_x.shape) if options.diagnostics and views is not None else None
    counterfactual_x = (
        _counterfactual(counterfactual, test_x.shape) if options.diagnostics and counterfactual is not None else None
    )
    n_classes = n_classes or int(max(train_y.max(initial=0), test_y.max(initial=0)) + 1)
    seed, evaluation = options.seed, options.eval
    fitted = train_linear_probe(
        Features(train_x, torch.from_numpy(train_y), torch.zeros(len(train_y))),
        n_classes,
        options.probe,
        seed=seed,
        device=options.resolved_device(),
    )
    predictions = fitted.predict(test_x).numpy()
    info = dict(info or {})
    evaluate = functools.partial(
        evaluate_predictions,
        kind=kind,
        n_boot=evaluation.n_boot,
        confidence=evaluation.confidence,
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
    device = options.resolved_device()
    if balanced_train is not None:
        balanced = train_balanced_probe(
            balanced_train, n_classes, options.probe, seed=seed, device=device, n_groups=n_groups
        )
        readouts[BALANCED_READOUT] = evaluate(test_y, balanced.predict(test_x).numpy(), test_s)[0]
    if head is not None:
        readouts[HEAD_READOUT] = evaluate(test_y, head_predictions(head, test_x, device).numpy(), test_s)[0]
    recoloured: np.ndarray | None = None
    if options.diagnostics:
        scores.update(feature_diagnostics(test_x, test_y, test_s, seed=seed, views=view_pair))
        if counterfactual_x is not None:
            found, recoloured = counterfactual_diagnostics(counterfactual_x, predictions, fitted.predict)
            scores.update(found)
    return AuditResult(
        scores,
        kind,
        pd.DataFrame({"target": test_y, "sensitive": test_s, "prediction": predictions}),
        project(test_x, test_y, test_s, evaluation.projection_points, seed),
        table,
        matrix,
        info,
        recoloured,
        options=options,
        readouts=readouts,
    )


SPLIT_FACTS: tuple[tuple[str, str], ...] = (
    ("metric_kind", "kind"),
    ("n_classes", "number of classes"),
    ("n_groups", "number of groups"),
)
"""What a training and a test split of one dataset share: (member, what the message calls it)."""


def check_matching_splits(train: object, test: object) -> None:
    """Refuse a training and a test set that cannot be splits of one dataset.

    Sets outside :class:`~ceco_fair.data.base.FairnessDataset` say nothing about themselves and pass.

    Raises:
        CecoFairError: their kind, number of classes or number of groups differ (both sets named).
    """
    if not isinstance(train, FairnessDataset) or not isinstance(test, FairnessDataset):
        return
    for member, what in SPLIT_FACTS:
        train_value, test_value = getattr(train, member), getattr(test, member)
        if train_value != test_value:
            raise CecoFairError(
                f"train and test: the {what} differs: train ({type(train).__name__}) has {train_value!r}, "
                f"test ({type(test).__name__}) has {test_value!r}; give two splits of one dataset"
            )


def audit(
    encoder: Encoder,
    train: ImageDataset,
    test: ImageDataset,
    options: AuditOptions | None = None,
    *,
    target: str | None = None,
    sensitive: str | None = None,
    name: str | None = None,
    **keywords: Any,
) -> AuditResult:
    """Audit an encoder: features of ``train`` and ``test``, a linear probe, and fairness metrics.

    The metrics are measured through the ``linear`` probe (``result.metrics``) and through the
    ``balanced`` one, fitted with every (target, sensitive) cell of ``train`` weighted equally
    (``result.readouts["balanced"]``).

    With ``options.diagnostics``, the representation diagnostics are measured on ``test`` too: two views
    of every test image made with :meth:`AuditOptions.views_augment` (seeded by ``options.seed``) and,
    for coloured digits, every test image re-rendered on each background colour.

    Args:
        encoder: a ``torch.nn.Module`` or callable mapping images ``[B, 3, H, W]`` to features ``[B, D]``.
        train: a dataset yielding ``(image, target, sensitive)``; the probe is fitted on it.
        test: a dataset yielding ``(image, target, sensitive)``; the metrics are measured on it.
        options: the probe, evaluation and run settings (default :class:`AuditOptions`).
        target: the target's name for the report (default: the dataset's ``target_name``).
        sensitive: the sensitive attribute's name (default: the dataset's ``sensitive_name``).
        name: the encoder's name in the results (default: its class name).
        **keywords: single options by name, replacing those of ``options`` (see
            :meth:`AuditOptions.with_keywords`: ``n_boot=0``, ``device="cpu"``, ``progress=False``, ...).

    Returns:
        An :class:`AuditResult`; ``.save(folder)`` writes the results and an HTML report.

    Raises:
        CecoFairError: an encoder that is not callable, ``train`` and ``test`` that differ in kind, number of
            classes or number of groups (see :func:`check_matching_splits`), an unknown option, or any error of
            :func:`audit_features`.
    """
    options = _options(options, keywords)
    if not callable(encoder):
        raise CecoFairError(f"encoder: expected a torch.nn.Module or a callable, got {type(encoder).__name__}")
    check_matching_splits(train, test)
    device = options.resolved_device()
    if isinstance(encoder, nn.Module):
        encoder = encoder.to(device)
    batch_size = options.eval.batch_size
    started = now()
    train_features, test_features = split_features(
        encoder,
        train,
        test,
        device=device,
        batch_size=batch_size,
        num_workers=options.num_workers,
        normalization=options.normalization,
        progress=options.progress,
    )
    name = name or type(encoder).__name__
    described = dataset_info(test)
    info = {
        **described,
        "encoder": name,
        "dataset": type(test).__name__,
        "target": target or described.get("target_name"),
        "sensitive": sensitive or described.get("sensitive_name"),
        "manifest": {**build_manifest(device), "started": started, "finished": now()},
    }
    if options.metrics == "auto" and "metric_kind" in described:
        options = dataclasses.replace(options, metrics=described["metric_kind"])
    views, counterfactual = None, None
    if options.diagnostics:
        views = view_features(
            encoder,
            test,
            options.views_augment(),
            seed=options.seed,
            device=device,
            batch_size=batch_size,
            num_workers=options.num_workers,
            progress=options.progress,
        )
        counterfactual = dataset_counterfactuals(
            encoder, test, device=device, batch_size=batch_size, normalization=options.normalization
        )
    result = audit_features(
        train_features.features,
        as_long(train_features.targets),
        test_features.features,
        as_long(test_features.targets),
        as_long(test_features.sensitive),
        dataclasses.replace(options, device=device),
        train_sensitive=as_long(train_features.sensitive),
        n_classes=test.n_classes if isinstance(test, FairnessDataset) else None,
        n_groups=test.n_groups if isinstance(test, FairnessDataset) else None,
        info=info,
        views=(views.first, views.second) if views is not None else None,
        counterfactual=counterfactual,
    )
    attach_strip(result, test)
    return result


def attach_strip(result: AuditResult, test: ImageDataset) -> None:
    """Add the report's colour strip of the first test digit when the audit measured colour sensitivity."""
    if result.counterfactual is not None and isinstance(test, Recolourable):
        result.strip = colour_strip(test, result.counterfactual)
