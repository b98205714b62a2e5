"""One run of a protocol: build the data, pretrain, probe, measure, write the run's folder."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ceco_fair.common.io import atomic_write_text
from ceco_fair.data.base import TEST_SPLIT as TEST_SPLIT  # re-exported: data.base owns the split names
from ceco_fair.data.base import TRAIN_SPLIT as TRAIN_SPLIT
from ceco_fair.data.base import VALID_SPLIT as VALID_SPLIT
from ceco_fair.data.base import FairnessDataset, validation_labels
from ceco_fair.data.registry import build_dataset, dataset_class, takes_seed
from ceco_fair.evaluation.auditing import AuditOptions, AuditResult, evaluate_encoder
from ceco_fair.evaluation.measure import dataset_info
from ceco_fair.evaluation.tracking import EpochTracker
from ceco_fair.models.encoders import infer_feature_dim
from ceco_fair.models.files import build_protocol_encoder, save_encoder
from ceco_fair.results.layout import (
    CHECKPOINT_FILE,
    CURVES_FILE,
    ENCODER_FILE,
    HISTORY_FILE,
    STATUS_RUNNING,
    curves_columns,
)
from ceco_fair.results.record import RunRecord
from ceco_fair.runner.protocol import Protocol, RunSpec
from ceco_fair.training.config import HISTORY_COLUMNS as TRAINING_COLUMNS
from ceco_fair.training.distributed import DistributedSession
from ceco_fair.training.epoch import Progress
from ceco_fair.training.hooks import Checkpointer, EpochHook, TensorBoard, Tracker
from ceco_fair.training.loop import pretrain
from ceco_fair.training.methods import MethodModel
from ceco_fair.training.state import unwrap
from ceco_fair.training.tensorboard import epoch_log

logger = logging.getLogger(__name__)


def run_record(protocol: Protocol, run: RunSpec, origin: Mapping[str, str] | None = None) -> RunRecord:
    """The record of a run that starts: its identifying fields and where it runs (``origin``)."""
    return RunRecord(
        run_id=run.run_id,
        method=run.method.label,
        loss=run.method.config.name,
        dataset=protocol.dataset,
        metric_kind=dataset_class(protocol.dataset).metric_kind,
        rho=run.rho,
        target=run.target,
        sensitive=run.sensitive,
        seed=run.seed,
        status=STATUS_RUNNING,
        phase=run.phase,
        trial=run.trial if run.phase is not None else None,
        repeat=run.repeat if run.phase is not None else None,
        values=dict(run.values) if run.phase is not None else None,
    ).with_facts(origin or {})


def build_split(protocol: Protocol, run: RunSpec, split: str) -> FairnessDataset:
    """The dataset of ``split`` for ``run``: ρ applies to the training split and the validation split carved from it."""
    kwargs: dict[str, Any] = dict(protocol.data)
    if takes_seed(protocol.dataset):
        kwargs["seed"] = run.seed
    if run.rho is not None and split != TEST_SPLIT:
        kwargs["rho"] = run.rho
    if run.target is not None:
        kwargs["target"] = run.target
    if run.sensitive is not None:
        kwargs["sensitive"] = run.sensitive
    return build_dataset(protocol.dataset, split, **kwargs)


def data_key(run: RunSpec) -> tuple[Any, ...]:
    """Runs with equal keys share their datasets."""
    sensitive = tuple(run.sensitive) if isinstance(run.sensitive, list) else run.sensitive
    return (run.rho, run.target, sensitive, run.seed)


def write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    """``history.csv`` (training statistics per epoch) and, for tracked runs, ``curves.csv``."""
    frame = pd.DataFrame(history) if history else pd.DataFrame(columns=list(TRAINING_COLUMNS))
    tracked = [column for column in curves_columns()[1:] if column in frame.columns]
    atomic_write_text(run_dir / HISTORY_FILE, frame.drop(columns=tracked).to_csv(index=False))
    if tracked:
        curves = frame.dropna(subset=tracked, how="all")[["epoch", *tracked]]
        curves = curves.astype({"epoch": int})
        atomic_write_text(run_dir / CURVES_FILE, curves.to_csv(index=False))


def method_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The classifier a method trained with its encoder (the ``head`` read-out), None when it trained none."""
    classifier = getattr(unwrap(model), "classifier", None)
    return classifier if isinstance(classifier, torch.nn.Module) else None


def execute_run(
    protocol: Protocol,
    run: RunSpec,
    run_dir: Path,
    *,
    train_set: FairnessDataset,
    test_set: FairnessDataset,
    device: torch.device,
    resume: bool,
    progress: bool = True,
    session: DistributedSession | None = None,
    origin: Mapping[str, Any] | None = None,
    valid_set: FairnessDataset | None = None,
) -> AuditResult | None:
    """Pretrain, probe and measure one run, writing its files into ``run_dir``.

    Args:
        protocol: the validated protocol.
        run: the grid cell.
        run_dir: the run's folder (``checkpoint.pt``, ``history.csv``, ``metrics.json``, ...).
        train_set: the training split.
        test_set: the test split.
        device: where to train.
        resume: continue from ``run_dir/checkpoint.pt`` if present.
        progress: show progress bars.
        session: this process's place in a data-parallel run (default: one process).
        origin: where the run is trained (shard, host, device; see
            :data:`~ceco_fair.results.layout.RUN_ORIGIN_COLUMNS`), recorded in ``run.json``.
        valid_set: the validation split (a protocol with a search): its scores under the validation
            rules go into ``run.json``'s ``validation``.

    Returns:
        The evaluation (None on processes other than rank 0 of a data-parallel run).
    """
    session = session or DistributedSession()
    context = session.context
    scored = valid_set is not None
    record = run_record(protocol, run, origin)
    torch.manual_seed(run.seed)
    encoder_config = protocol.encoder
    encoder = build_protocol_encoder(encoder_config)
    if not isinstance(getattr(encoder, "feature_dim", None), int):
        channels, height, width = train_set[0][0].shape
        encoder.feature_dim = infer_feature_dim(encoder, (channels, height, width))  # type: ignore[assignment]
    n_classes = train_set.n_classes
    method = dataclasses.replace(run.method.config, projection_dim=encoder_config.projection_dim)
    model = session.prepare_model(MethodModel(encoder, method, n_classes), device, protocol.train.sync_batchnorm)
    if context.is_main:
        record.write(run_dir)
    history: list[dict[str, float]] = []
    log = epoch_log(run_dir, protocol.train.tensorboard and context.is_main and method.trains)
    if method.trains:
        hooks: list[EpochHook] = []
        if protocol.eval.track_every:
            tracker = EpochTracker(
                train_set,
                test_set,
                kind=train_set.metric_kind,
                augment=protocol.train.augment,
                seed=run.seed,
                device=device,
                points=protocol.eval.track_points,
                batch_size=protocol.eval.batch_size,
            )
            hooks.append(
                Tracker(tracker, every=protocol.eval.track_every, epochs=protocol.train.epochs, is_main=context.is_main)
            )
        if log is not None:
            hooks.append(TensorBoard(log))
        hooks.append(Checkpointer(run_dir / CHECKPOINT_FILE, resume=resume, is_main=context.is_main))
        history = pretrain(
            model,
            method,
            train_set,
            protocol.train,
            seed=run.seed,
            device=device,
            context=context,
            hooks=hooks,
            progress=Progress(progress, run.run_id),
        )
    if log is not None:
        log.close()
    if not context.is_main:
        return None
    write_history(run_dir, history)
    encoder_module = unwrap(model).encoder
    assert isinstance(encoder_module, torch.nn.Module)
    save_encoder(encoder_module, run_dir / ENCODER_FILE)
    fields = {key: value for key, value in record.to_json(metrics=False).items() if key != "status"}
    info = {**dataset_info(test_set), **fields, "encoder": protocol.encoder.arch}
    options = AuditOptions(
        probe=protocol.probe,
        eval=protocol.eval,
        metrics=test_set.metric_kind,
        seed=run.seed,
        device=device,
        normalization=protocol.train.augment,
        view_augment=protocol.train.augment,
        num_workers=protocol.train.num_workers,
        progress=progress,
    )
    if valid_set is None and protocol.probe.balanced_on == VALID_SPLIT:
        valid_set = build_split(protocol, run, VALID_SPLIT)
    result = evaluate_encoder(
        encoder_module,
        train_set,
        test_set,
        options,
        valid=valid_set,
        validation_groups=validation_labels(type(valid_set)) == "groups" if scored else None,
        head=method_head(model),
        info=info,
        label=run.run_id,
    )
    result.write_run_files(run_dir)
    record.with_facts(result.info).finish(result.metrics, result.readouts).write(run_dir)
    return result
