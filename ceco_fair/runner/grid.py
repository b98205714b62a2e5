"""The grid loop: run a protocol's runs (a search's, then its final ones) into one output folder.

Each process takes its shard's share of the grid; rank 0 claims every run's folder before training
it and rebuilds the folder-level files after each run, so shards running at once fill one folder. A
run whose training diverges or whose user code raises is marked ``failed``; the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from ceco_fair.common.io import atomic_write_text, locked
from ceco_fair.errors import UserCodeError
from ceco_fair.results.folder import finished_record, rebuild_folder, write_grid
from ceco_fair.results.layout import (
    LOCK_FILE,
    LOG_FILE,
    PROTOCOL_FILE,
    RESULTS_CSV,
    RUN_FILE,
    RUNS_DIR,
    STATUS_COMPLETE,
    STATUS_FAILED,
    run_dir,
)
from ceco_fair.results.manifest import build_manifest, now, run_origin, update_manifest
from ceco_fair.results.selection import read_selection
from ceco_fair.runner.experiment import (
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALID_SPLIT,
    build_split,
    data_key,
    execute_run,
    run_record,
)
from ceco_fair.runner.protocol import Protocol, RunSpec
from ceco_fair.runner.shards import Shard, claim_run, holder_is_alive, read_claim
from ceco_fair.training import determinism
from ceco_fair.training.distributed import DistributedSession
from ceco_fair.training.loop import TrainingDiverged

logger = logging.getLogger("ceco_fair")

EXIT_OK, EXIT_FAILED = 0, 1
SEARCH_POLL_SECONDS = 10.0
"""How often a process that finished its share of a search looks again for the other shards' runs."""
TRACEBACK_RECORD = "traceback_record"
"""Marks (``extra=``) log records holding a user traceback: the log file gets them, stderr with ``--traceback``."""


@contextlib.contextmanager
def log_to_file(path: Path | None, earlier: Sequence[logging.LogRecord] = ()) -> Iterator[None]:
    """Copy ``earlier`` records, then every log record of the block, into ``path`` (nothing when None)."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for record in earlier:
        handler.handle(record)
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def run_protocol(
    protocol: Protocol,
    output: Path,
    device: torch.device,
    *,
    resume: bool,
    progress: bool,
    session: DistributedSession | None = None,
    shard: Shard | None = None,
    earlier_records: Sequence[logging.LogRecord] = (),
) -> int:
    """Run this shard's cells of the grid (all of them by default); return the exit status (1 if a run failed).

    ``earlier_records``: log records of the checks before the run, written first into ``run.log``.
    """
    session = session or DistributedSession()
    shard = shard or Shard()
    context = session.context
    deterministic = determinism.effective(protocol.train.deterministic, device)
    manifest = build_manifest(device, world_size=context.world_size, resumed=resume, deterministic=deterministic)
    if context.is_main:
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output / PROTOCOL_FILE, yaml.safe_dump(protocol.resolved(), sort_keys=False))
        write_grid(output, (run.run_id for run in protocol.grid()))
        update_manifest(output, manifest, str(shard), finished=None)
    with (
        log_to_file(output / LOG_FILE if context.is_main else None, earlier_records),
        determinism.deterministic_mode(deterministic, device),
    ):
        options: dict[str, Any] = {"resume": resume, "progress": progress, "session": session, "shard": shard}
        failed = _run_grid(protocol, protocol.grid(), output, device, **options)
        if protocol.search is not None:
            failed += _run_grid(protocol, _final_grid(protocol, output, session), output, device, **options)
        if context.is_main:
            _finish(protocol, output, manifest, shard)
    return EXIT_FAILED if failed else EXIT_OK


def _finish(protocol: Protocol, output: Path, manifest: dict[str, Any], shard: Shard) -> None:
    """Rebuild the folder's tables, record this shard's end and write the report."""
    state = rebuild_folder(output)
    update_manifest(output, {**manifest, "finished": now()}, str(shard), finished=None if state.missing else now())
    if state.missing:
        logger.info("%d of the grid's runs not finished yet: %s", len(state.missing), ", ".join(state.missing))
    if protocol.report:
        from ceco_fair.report import build_report

        with locked(output / LOCK_FILE):
            report = build_report(output)
        logger.info("report: %s", report)
    logger.info("results: %s", output / RESULTS_CSV)


def _take_run(output: Path, run: RunSpec, origin: dict[str, str], *, resume: bool) -> bool:
    """Whether this process trains ``run``: not when it is complete (with ``resume``) or another holds its claim."""
    folder = run_dir(output, run.run_id)
    if resume:
        done = finished_record(folder)
        if done is not None and done.status == STATUS_COMPLETE:
            logger.info("%s: already complete", run.run_id)
            return False
        if done is not None and done.status == STATUS_FAILED:
            logger.info("%s: failed before (%s); trying again", run.run_id, done.error)
    claim = {**origin, "pid": os.getpid(), "claimed": now()}
    return claim_run(folder, claim, take_over=resume, lock=output / LOCK_FILE)


def _final_grid(protocol: Protocol, output: Path, session: DistributedSession) -> list[RunSpec]:
    """The final runs once every search run is finished (waiting for other shards); [] if it never will be.

    Rank 0 waits for the search runs that live processes still train, rebuilds the folder (writing
    ``selection.json``), extends ``grid.json`` with the final runs and tells the other ranks.
    """
    picks: dict[str, Any] | None = None
    if session.context.is_main:
        search_ids = [run.run_id for run in protocol.grid()]
        while True:
            missing = {run_id for run_id in search_ids if finished_record(run_dir(output, run_id)) is None}
            if not missing:
                rebuild_folder(output)
                picks = read_selection(output)
                break
            holders = [read_claim(run_dir(output, run_id)) for run_id in sorted(missing)]
            if not any(holder and _may_still_run(holder) for holder in holders):
                logger.error(
                    "%d search runs are unfinished and nobody trains them (%s): the final runs wait for "
                    "a rerun with --resume",
                    len(missing),
                    ", ".join(sorted(missing)),
                )
                break
            logger.info("waiting for %d search runs of other processes: %s", len(missing), ", ".join(sorted(missing)))
            time.sleep(SEARCH_POLL_SECONDS)
    picks = session.broadcast(picks)
    if picks is None:
        return []
    final = protocol.final_grid(picks)
    if session.context.is_main:
        write_grid(output, [run.run_id for run in (*protocol.grid(), *final)])
    return final


def _may_still_run(claim: dict[str, Any]) -> bool:
    """Whether a claim's holder may still be training: a live process here, or one on another host."""
    return claim.get("host") != socket.gethostname() or holder_is_alive(claim)


def _run_grid(
    protocol: Protocol,
    grid: list[RunSpec],
    output: Path,
    device: torch.device,
    *,
    resume: bool,
    progress: bool,
    session: DistributedSession,
    shard: Shard,
) -> int:
    """The grid loop of :func:`run_protocol`; returns the number of failed runs.

    Rank 0 decides whether each run is this process's to train (and claims it) and tells the others.
    """
    context = session.context
    origin = run_origin(str(shard), device)
    failed: list[str] = []
    cached_key: tuple[Any, ...] | None = None
    datasets: tuple[Any, Any, Any] | None = None
    mine = shard.share(grid)
    for count, (position, run) in enumerate(mine, start=1):
        logger.info("[%d/%d, grid #%d, shard %s] %s", count, len(mine), position + 1, shard, run.run_id)
        if not session.broadcast(_take_run(output, run, origin, resume=resume) if context.is_main else None):
            continue
        folder = run_dir(output, run.run_id)
        try:
            if data_key(run) != cached_key:
                cached_key, datasets = None, None
                valid = build_split(protocol, run, VALID_SPLIT) if protocol.search is not None else None
                datasets = (build_split(protocol, run, TRAIN_SPLIT), build_split(protocol, run, TEST_SPLIT), valid)
                cached_key = data_key(run)
            assert datasets is not None
            execute_run(
                protocol.for_run(run),
                run,
                folder,
                train_set=datasets[0],
                test_set=datasets[1],
                valid_set=datasets[2],
                device=device,
                resume=resume,
                progress=progress,
                session=session,
                origin=origin,
            )
        except (TrainingDiverged, UserCodeError) as error:
            failed.append(run.run_id)
            message = str(error.at(f"run {run.run_id}") if isinstance(error, UserCodeError) else error)
            logger.error("%s", message)
            if isinstance(error, UserCodeError) and error.details:
                logger.error("traceback of run %s:\n%s", run.run_id, error.details, extra={TRACEBACK_RECORD: True})
            if context.is_main:
                run_record(protocol, run, origin).fail(message).write(folder)
        if context.is_main:
            rebuild_folder(output)
    if failed:
        logger.error(
            "%d of %d runs failed (%s): their errors are in %s/<run_id>/%s and %s; after fixing, --resume retries them",
            len(failed),
            len(mine),
            ", ".join(failed),
            RUNS_DIR,
            RUN_FILE,
            LOG_FILE,
        )
    return len(failed)
