"""Command line: ``python -m ceco_fair.run PROTOCOL.yaml [--output DIR] [--resume] [--device D] [--dry-run]``.

Validates the whole protocol (keys, values, data folders) before any training, runs the grid of
methods × ρ/attributes × seeds, writes every run's folder, the tidy ``results.csv`` /
``results.json`` and an HTML report. Bad input: one line on stderr, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from ceco_fair import determinism
from ceco_fair.comparisons import write_comparisons
from ceco_fair.distributed import DistributedSession, start_distributed
from ceco_fair.errors import CecoFairError
from ceco_fair.experiment import build_split, data_key, execute_run, run_record
from ceco_fair.io import atomic_write_json, atomic_write_text
from ceco_fair.layout import (
    LOG_FILE,
    MANIFEST_FILE,
    PROTOCOL_FILE,
    RESULTS_CSV,
    STATUS_COMPLETE,
    STATUS_FAILED,
    run_dir,
)
from ceco_fair.manifest import build_manifest, now
from ceco_fair.protocol import Protocol, load_protocol
from ceco_fair.results import read_results, write_results
from ceco_fair.run_checks import check_before_writing
from ceco_fair.train import TrainingDiverged

logger = logging.getLogger("ceco_fair")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m ceco_fair.run",
        description="Train and audit encoders as a protocol says: validate, run the grid, write results and a report.",
    )
    parser.add_argument("protocol", type=Path, help="the protocol YAML file")
    parser.add_argument("--output", type=Path, help="output folder (default: reports/<name>/<timestamp>/)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --output (default: the newest folder of this protocol)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides the protocol's device")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the grid, train nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars; warnings and errors only")
    return parser.parse_args(argv)


def choose_device(requested: str, local_rank: int | None = None) -> torch.device:
    """The one device of this process: ``auto`` picks CUDA when available."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise CecoFairError("device: cuda was requested but no CUDA device is available (use --device cpu)")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank or 0)


def default_output(protocol: Protocol, resume: bool) -> Path:
    """``reports/<name>/<timestamp>/`` for a new run; the newest existing folder with ``resume``."""
    base = Path("reports") / protocol.name
    if resume:
        existing = sorted(p for p in base.glob("*") if (p / PROTOCOL_FILE).exists()) if base.exists() else []
        if not existing:
            raise CecoFairError(f"--resume: no earlier run of {protocol.name!r} under {base}/ (give --output)")
        return existing[-1]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, index = base / stamp, 1
    while candidate.exists():
        candidate, index = base / f"{stamp}-{index}", index + 1
    return candidate


def check_output(output: Path, protocol: Protocol, resume: bool) -> None:
    """Never overwrite an earlier run; resume only a folder made by the same protocol."""
    saved = output / PROTOCOL_FILE
    if resume:
        if not saved.exists():
            raise CecoFairError(f"--resume: {output} holds no earlier run (no protocol.yaml)")
        previous = yaml.safe_load(saved.read_text(encoding="utf-8"))
        current = protocol.resolved()
        changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if changed:
            raise CecoFairError(f"--resume: the protocol differs from the one in {saved} in: {', '.join(changed)}")
    elif output.exists() and any(output.iterdir()):
        raise CecoFairError(f"--output: {output} already holds results; choose another folder or add --resume")


def print_grid(protocol: Protocol, output: Path, device: torch.device) -> None:
    """The dry run's summary on stdout."""
    grid = protocol.grid()
    lines = [f"protocol {protocol.name!r} is valid: {len(grid)} runs on {device}, output {output}"]
    lines += [f"  {run.run_id}" for run in grid]
    sys.stdout.write("\n".join(lines) + "\n")


def configure_logging(quiet: bool) -> None:
    """Log lines on stderr (INFO, or WARNING with ``--quiet``); ``run.log`` always gets INFO."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING if quiet else logging.INFO)


@contextlib.contextmanager
def log_to_file(path: Path | None) -> Iterator[None]:
    """Copy every log record of the block into ``path`` (nothing when ``path`` is None)."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
) -> int:
    """Run every cell of the grid; return the exit status (1 if a run failed)."""
    session = session or DistributedSession()
    context = session.context
    deterministic = determinism.effective(protocol.train.deterministic, device)
    manifest = build_manifest(device, world_size=context.world_size, resumed=resume, deterministic=deterministic)
    if context.is_main:
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output / PROTOCOL_FILE, yaml.safe_dump(protocol.resolved(), sort_keys=False))
        atomic_write_json(output / MANIFEST_FILE, manifest)
    with log_to_file(output / LOG_FILE if context.is_main else None), determinism.deterministic_mode(
        deterministic, device
    ):
        return _run_grid(protocol, output, device, manifest, resume=resume, progress=progress, session=session)


def _run_grid(
    protocol: Protocol,
    output: Path,
    device: torch.device,
    manifest: dict[str, Any],
    *,
    resume: bool,
    progress: bool,
    session: DistributedSession,
) -> int:
    """The grid loop of :func:`run_protocol`."""
    context = session.context
    previous = {r["run_id"]: r for r in read_results(output)} if resume else {}
    records: dict[str, dict[str, Any]] = {}
    failed = 0
    cached_key: tuple[Any, ...] | None = None
    datasets: tuple[Any, Any] | None = None
    grid = protocol.grid()
    for index, run in enumerate(grid, start=1):
        folder = run_dir(output, run.run_id)
        done = previous.get(run.run_id)
        if done is not None and done.get("status") == STATUS_COMPLETE:
            logger.info("[%d/%d] %s: already complete", index, len(grid), run.run_id)
            records[run.run_id] = done
            continue
        logger.info("[%d/%d] %s", index, len(grid), run.run_id)
        if data_key(run) != cached_key:
            datasets = (build_split(protocol, run, "train"), build_split(protocol, run, "test"))
            cached_key = data_key(run)
        assert datasets is not None
        record: dict[str, Any] = run_record(protocol, run)
        try:
            result = execute_run(
                protocol,
                run,
                folder,
                train_set=datasets[0],
                test_set=datasets[1],
                device=device,
                resume=resume,
                progress=progress,
                session=session,
            )
            record.update(status=STATUS_COMPLETE, metrics=result.metrics if result is not None else {})
        except TrainingDiverged as error:
            logger.error("%s", error)
            record.update(status=STATUS_FAILED, error=str(error), metrics={})
            failed += 1
        records[run.run_id] = record
        if context.is_main:
            write_results(output, list(records.values()))
            write_comparisons(
                output,
                records.values(),
                kind=str(record["metric_kind"]),
                baseline=protocol.eval.baseline,
                confidence=protocol.eval.confidence,
            )
    if context.is_main:
        atomic_write_json(output / MANIFEST_FILE, {**manifest, "finished": now()})
        if protocol.report:
            from ceco_fair.report import build_report

            report = build_report(output)
            logger.info("report: %s", report)
        logger.info("results: %s", output / RESULTS_CSV)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m ceco_fair.run``; returns the exit status."""
    args = parse_args(argv)
    configure_logging(args.quiet)
    session: DistributedSession | None = None
    try:
        protocol = load_protocol(args.protocol)
        determinism.prepare_environment(protocol.train.deterministic)
        requested = args.device or protocol.device
        session = start_distributed("cuda" if requested != "cpu" and torch.cuda.is_available() else "cpu")
        device = choose_device(requested, session.local_rank)
        if protocol.train.sync_batchnorm and session.active and device.type != "cuda":
            raise CecoFairError(
                f"{args.protocol}: train.sync_batchnorm: PyTorch's SyncBatchNorm runs on CUDA only; "
                "set it to false for CPU processes"
            )
        output = session.broadcast(args.output or default_output(protocol, args.resume))
        check_output(output, protocol, args.resume)
        session.barrier()
        if args.dry_run:
            if session.context.is_main:
                print_grid(protocol, output, device)
            return EXIT_OK
        check_before_writing(protocol)
        return run_protocol(protocol, output, device, resume=args.resume, progress=not args.quiet, session=session)
    except CecoFairError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished epochs are checkpointed; continue with --resume\n")
        return 130
    finally:
        if session is not None:
            session.close()


if __name__ == "__main__":
    sys.exit(main())
