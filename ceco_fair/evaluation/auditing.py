"""Audit any encoder: frozen features, the read-outs, and bias / group-fairness metrics.

The public API: :func:`audit` is the evaluation half of every protocol run, open to encoders trained
anywhere (a torchvision ResNet-18, a checkpoint from another toolkit, or any callable that maps an image
batch to features); :func:`audit_features` starts from features computed elsewhere. Both take their
settings as one :class:`AuditOptions`, which reuses a protocol's ``probe`` and ``eval`` sections.

One pipeline: :func:`evaluate_encoder` reads a frozen encoder (a
:class:`~ceco_fair.evaluation.features.FeatureReader`), and :func:`measure` fits every read-out of
:data:`~ceco_fair.evaluation.readouts.READOUTS` once and measures it; :func:`audit`, a protocol run
(:func:`ceco_fair.runner.experiment.execute_run`) and validation scoring all go through them. The
measuring steps live in :mod:`ceco_fair.evaluation.measure`, the files in :mod:`ceco_fair.results.run_files`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import torch
from torch import nn

from ceco_fair.common.config import closest, to_plain
from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import FairnessDataset, ImageDataset, Recolourable
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.diagnostics import (
    colour_strip,
    counterfactual_diagnostics,
    dataset_counterfactuals,
    feature_diagnostics,
    view_features,
)
from ceco_fair.evaluation.eval_config import EvalConfig
from ceco_fair.evaluation.features import FeatureReader
from ceco_fair.evaluation.inputs import ArrayLike, AuditInputs
from ceco_fair.evaluation.measure import AuditKind, dataset_info, evaluate_predictions, evaluate_scores, project
from ceco_fair.evaluation.probe import Encoder, Features, ProbeConfig
from ceco_fair.evaluation.readouts import Head, Predictor, ReadoutInputs, check_readouts, chosen_readouts
from ceco_fair.evaluation.validation import validation_scores_of
from ceco_fair.results.layout import PRIMARY_READOUT, READOUT_COLUMN, MetricKind
from ceco_fair.results.manifest import build_manifest, now
from ceco_fair.results.record import RunRecord, split_readouts
from ceco_fair.results.run_files import write_run_files, write_single_run_folder
from ceco_fair.training.device import choose_device

logger = logging.getLogger(__name__)

AUDIT_VIEW_AUGMENT = AugmentConfig(crop_scale=(0.6, 1.0), rotation=10.0)
"""The default augmentation of an audit's two views: a random resized crop (60–100% of the area, aspect
3/4–4/3) and a rotation of up to ±10°, no colour change (the quickstart's training augmentation)."""
VALID_SPLIT: Final = "valid"

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
        readouts: the read-outs measured, by name in :data:`~ceco_fair.evaluation.readouts.READOUTS`
            (None: every registered one the inputs allow); the primary read-out is always measured.
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
    readouts: tuple[str, ...] | None = None
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
        check_readouts(self.readouts)
        if self.num_workers < 0:
            raise CecoFairError(f"num_workers: expected >= 0, got {self.num_workers}")

    def with_keywords(self, **keywords: Any) -> AuditOptions:
        """These options with single settings replaced, by the keyword names :func:`audit` accepts.

        A field name replaces that field; ``n_boot``, ``confidence``, ``projection_points`` and
        ``batch_size`` replace fields of :attr:`eval`; ``probe_config`` is :attr:`probe`, and ``probe``
        given as a read-out's name is :attr:`readouts` (that read-out).

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
                top["readouts"] = (value,)
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

    def reader(self, label: str = "") -> FeatureReader:
        """The feature reader these options describe (device, ``eval.batch_size``, workers, normalisation, progress)."""
        return FeatureReader(
            self.resolved_device(), self.eval.batch_size, self.num_workers, self.normalization, self.progress, label
        )

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
        readouts: the bias / fairness metrics of the other read-outs (read-out -> metric -> value, see
            :mod:`ceco_fair.evaluation.readouts`); ``metrics`` are the primary read-out's.
        predictors: every fitted read-out by name (``predict`` classes, ``scores`` probabilities).
        scores: every read-out's class probabilities of the test samples ``[n_test, C]``.
        readout_predictions: every read-out's classes of the test samples ``[n_test]``.
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
    predictors: dict[str, Predictor] = field(default_factory=dict, repr=False)
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    readout_predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The metrics as a tidy table: one row per read-out × metric, columns ``readout``, ``metric``, ``value``."""
        every = split_readouts(self.metrics, self.readouts)
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


@dataclass(frozen=True)
class _Measured:
    """One read-out, fitted and measured on the test features."""

    predictor: Predictor
    predictions: np.ndarray
    scores: np.ndarray
    metrics: dict[str, float]
    table: pd.DataFrame | None
    matrix: np.ndarray | None


def measure(inputs: AuditInputs, options: AuditOptions, info: dict[str, Any] | None = None) -> AuditResult:
    """Fit every read-out once on ``inputs``, measure each on the test features, and the diagnostics.

    The read-outs are those of :data:`~ceco_fair.evaluation.readouts.READOUTS` that ``options.readouts``
    names and the inputs allow, fitted in registry order. The primary read-out's metrics are the result's
    ``metrics`` (with the diagnostics), its classes the ``prediction`` column and the counterfactual flips'.

    Args:
        inputs: the checked features (see :meth:`AuditInputs.from_arrays`).
        options: the probe, evaluation and run settings.
        info: names recorded with the result (``group_names`` names the group table's rows).
    """
    seed, evaluation = options.seed, options.eval
    info = dict(info or {})
    evaluate = functools.partial(
        evaluate_predictions,
        kind=inputs.kind,
        n_boot=evaluation.n_boot,
        confidence=evaluation.confidence,
        seed=seed,
        group_names=info.get("group_names"),
    )
    score = functools.partial(evaluate_scores, n_boot=evaluation.n_boot, confidence=evaluation.confidence, seed=seed)
    fit_inputs = ReadoutInputs(
        inputs.train,
        inputs.n_classes,
        options.probe,
        seed,
        options.resolved_device(),
        train_groups=inputs.train_groups,
        valid=inputs.valid,
        n_groups=inputs.n_groups,
        head=inputs.head,
    )
    test_x, test_y, test_s = inputs.test.features, inputs.test.targets.numpy(), inputs.test.sensitive.numpy()
    train = (inputs.train.targets.numpy(), inputs.train.sensitive.numpy()) if inputs.train_groups else None
    measured: dict[str, _Measured] = {}
    undefined: dict[str, list[str]] = {}
    for readout in chosen_readouts(options.readouts):
        predictor = readout.fit(fit_inputs)
        if predictor is not None:
            predicted = predictor.predict(test_x).numpy()
            scores = predictor.scores(test_x).numpy()
            measured[readout.name] = _Measured(predictor, predicted, scores, *evaluate(test_y, predicted, test_s))
            if inputs.kind == "group":
                values, reasons = score(test_y, scores.astype(np.float64), test_s, predictions=predicted, train=train)
                measured[readout.name].metrics.update(values)
                for reason in reasons:
                    logger.info("%s read-out: %s", readout.name, reason)
                if reasons:
                    undefined[readout.name] = reasons
    if undefined:
        info["score_notes"] = undefined
    primary = measured[PRIMARY_READOUT]
    metrics = dict(primary.metrics)
    recoloured: np.ndarray | None = None
    if options.diagnostics:
        metrics.update(feature_diagnostics(test_x, test_y, test_s, seed=seed, views=inputs.views))
        if inputs.counterfactual is not None:
            found, recoloured = counterfactual_diagnostics(
                inputs.counterfactual, primary.predictions, primary.predictor.predict
            )
            metrics.update(found)
    return AuditResult(
        metrics,
        inputs.kind,
        pd.DataFrame({"target": test_y, "sensitive": test_s, "prediction": primary.predictions}),
        project(test_x, test_y, test_s, evaluation.projection_points, seed),
        primary.table,
        primary.matrix,
        info,
        recoloured,
        options=options,
        readouts={name: found.metrics for name, found in measured.items() if name != PRIMARY_READOUT},
        predictors={name: found.predictor for name, found in measured.items()},
        scores={name: found.scores for name, found in measured.items()},
        readout_predictions={name: found.predictions for name, found in measured.items()},
    )


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
    """Audit precomputed features: fit the read-outs on train, measure them on test (see :func:`measure`).

    The bias / fairness metrics are measured through each read-out (:mod:`ceco_fair.evaluation.readouts`):
    ``linear`` always (``metrics``), ``balanced`` when the training sensitive values (or ``balanced_on``)
    are given, ``head`` when ``head`` is, and any registered read-out the inputs allow (``readouts``).

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
            the training features (a validation split; recorded as ``probe.balanced_on: valid``).
        head: a trained classifier mapping features ``[n, D]`` to logits ``[n, C]`` (the method's own).
        n_groups: number of sensitive groups (default: the largest value + 1).
        **keywords: single options by name, replacing those of ``options`` (see
            :meth:`AuditOptions.with_keywords`: ``n_boot=0``, ``device="cpu"``, ``metrics="group"``, ...).

    Raises:
        CecoFairError: mismatched lengths, a single sensitive group, a non-binary target where the group
            metrics need one, features that are not ``[n, D]`` or not finite, an unknown option.
    """
    options = _options(options, keywords)
    if balanced_on is not None and options.probe.balanced_on != VALID_SPLIT:
        options = dataclasses.replace(options, probe=dataclasses.replace(options.probe, balanced_on=VALID_SPLIT))
    inputs = AuditInputs.from_arrays(
        train_features,
        train_targets,
        test_features,
        test_targets,
        test_sensitive,
        metrics=options.metrics,
        diagnostics=options.diagnostics,
        n_classes=n_classes,
        train_sensitive=train_sensitive,
        valid=balanced_on,
        views=views,
        counterfactual=counterfactual,
        n_groups=n_groups,
        head=head,
    )
    return measure(inputs, options, info)


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


def evaluate_encoder(
    encoder: Encoder,
    train: ImageDataset,
    test: ImageDataset,
    options: AuditOptions,
    *,
    valid: ImageDataset | None = None,
    validation_groups: bool | None = None,
    head: Head | None = None,
    info: dict[str, Any] | None = None,
    label: str = "",
) -> AuditResult:
    """The one frozen-encoder pipeline of an audit and a run: read the encoder, fit the read-outs, measure.

    Every extraction goes through ``options.reader()``; the read-outs are fitted once (:func:`measure`),
    and the validation rules score the primary read-out's predictions on ``valid`` (no second fit).

    Args:
        encoder: maps normalised images ``[B, 3, H, W]`` to features ``[B, D]`` (on the options' device).
        train: the split the read-outs are fitted on.
        test: the split they are measured on (also the diagnostics' views and counterfactuals).
        options: the probe, evaluation and run settings; ``metrics: auto`` takes a
            :class:`~ceco_fair.data.base.FairnessDataset`'s kind.
        valid: the validation split: read when ``probe.balanced_on`` is ``valid`` or with ``validation_groups``.
        validation_groups: score ``valid`` under the validation rules (None: do not), True when the rules may
            read its sensitive values (``val_worst_group``); the scores go into ``info["validation"]``.
        head: the classifier the method trained with the encoder (the ``head`` read-out).
        info: names recorded with the result.
        label: the progress bars' prefix (a run's name).

    Returns:
        The result, the colour strip attached for recolourable test sets.
    """
    if options.metrics == "auto" and isinstance(test, FairnessDataset):
        options = dataclasses.replace(options, metrics=test.metric_kind)
    reader = options.reader(label)
    train_features, test_features = reader.features(encoder, train, "train"), reader.features(encoder, test, "test")
    views, counterfactual = None, None
    if options.diagnostics:
        views = view_features(encoder, test, options.views_augment(), seed=options.seed, reader=reader)
        counterfactual = dataset_counterfactuals(encoder, test, reader)
    wants_valid = validation_groups is not None or options.probe.balanced_on == VALID_SPLIT
    valid_features = reader.features(encoder, valid, VALID_SPLIT) if valid is not None and wants_valid else None
    facts = train if isinstance(train, FairnessDataset) else None
    inputs = AuditInputs.from_arrays(
        train_features.features,
        train_features.targets,
        test_features.features,
        test_features.targets,
        test_features.sensitive,
        metrics=options.metrics,
        diagnostics=options.diagnostics,
        n_classes=facts.n_classes if facts is not None else None,
        train_sensitive=train_features.sensitive,
        valid=valid_features,
        views=(views.first, views.second) if views is not None else None,
        counterfactual=counterfactual,
        n_groups=facts.n_groups if facts is not None else None,
        head=head,
    )
    result = measure(inputs, dataclasses.replace(options, device=reader.device), info)
    if validation_groups is not None and valid_features is not None:
        result.info["validation"] = validation_scores_of(
            result.predictors[PRIMARY_READOUT], valid_features, kind=inputs.kind, groups=validation_groups
        )
    attach_strip(result, test)
    return result


def audit(
    encoder: Encoder,
    train: ImageDataset,
    test: ImageDataset,
    options: AuditOptions | None = None,
    *,
    target: str | None = None,
    sensitive: str | None = None,
    name: str | None = None,
    valid: ImageDataset | None = None,
    **keywords: Any,
) -> AuditResult:
    """Audit an encoder: features of ``train`` and ``test``, the read-outs, and fairness metrics.

    The metrics are measured through the ``linear`` probe (``result.metrics``), through the ``balanced``
    one, fitted with every (target, sensitive) cell of ``train`` weighted equally
    (``result.readouts["balanced"]``), and through every registered read-out (:func:`evaluate_encoder`,
    the pipeline of a protocol run).

    With ``options.diagnostics``, the representation diagnostics are measured on ``test`` too: two views
    of every test image made with :meth:`AuditOptions.views_augment` (seeded by ``options.seed``) and,
    for coloured digits, every test image re-rendered on each background colour.

    Args:
        encoder: a ``torch.nn.Module`` or callable mapping images ``[B, 3, H, W]`` to features ``[B, D]``.
        train: a dataset yielding ``(image, target, sensitive)``; the read-outs are fitted on it.
        test: a dataset yielding ``(image, target, sensitive)``; the metrics are measured on it.
        options: the probe, evaluation and run settings (default :class:`AuditOptions`).
        target: the target's name for the report (default: the dataset's ``target_name``).
        sensitive: the sensitive attribute's name (default: the dataset's ``sensitive_name``).
        name: the encoder's name in the results (default: its class name).
        valid: a validation split, for the balanced read-out with ``probe.balanced_on: valid``.
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
    started = now()
    name = name or type(encoder).__name__
    described = dataset_info(test)
    info = {
        **described,
        "encoder": name,
        "dataset": type(test).__name__,
        "target": target or described.get("target_name"),
        "sensitive": sensitive or described.get("sensitive_name"),
    }
    result = evaluate_encoder(encoder, train, test, dataclasses.replace(options, device=device), valid=valid, info=info)
    result.info["manifest"] = {**build_manifest(device), "started": started, "finished": now()}
    return result


def attach_strip(result: AuditResult, test: ImageDataset) -> None:
    """Add the report's colour strip of the first test digit when the audit measured colour sensitivity."""
    if result.counterfactual is not None and isinstance(test, Recolourable):
        result.strip = colour_strip(test, result.counterfactual)
