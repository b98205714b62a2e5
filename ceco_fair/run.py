"""Command line: ``python -m ceco_fair.run PROTOCOL.yaml [--output DIR] [--resume] [--shard K/N] [...]``.

Validates the whole protocol (keys, values, data folders) before any training, runs the grid of
methods × ρ/attributes × seeds, writes every run's folder, the tidy ``results.csv`` /
``results.json`` and an HTML report. Bad input: one line on stderr, exit status 2, nothing written.
With ``--shard K/N`` the process runs only its share of the grid (see :mod:`ceco_fair.runner.shards`);
every run's folder is claimed before training, and the folder-level files are rebuilt from the run
folders after each run, so shards running at once fill one folder. A run whose training diverges or
whose user code (dataset, loss, encoder) raises is marked ``failed`` with its error in ``run.json``;
the other runs go on, the exit status is 1, and ``--resume`` retries the failed runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import torch
import yaml

from ceco_fair.common.config import to_plain
from ceco_fair.common.progress import progress_bars
from ceco_fair.errors import CecoFairError, UserCodeError
from ceco_fair.results.layout import FINALS_REPEAT, PROTOCOL_FILE
from ceco_fair.runner.checks import check_before_writing
from ceco_fair.runner.grid import EXIT_FAILED, EXIT_OK, TRACEBACK_RECORD, run_protocol
from ceco_fair.runner.protocol import Protocol, RunSpec, load_protocol
from ceco_fair.runner.search import draws_table
from ceco_fair.runner.shards import Shard, parse_shard
from ceco_fair.training import determinism
from ceco_fair.training.device import choose_device
from ceco_fair.training.distributed import DistributedSession, start_distributed

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main", "parse_args", "run_protocol"]

logger = logging.getLogger("ceco_fair")

EXIT_USAGE = 2


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
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="run only the grid's runs whose 0-based index modulo N is K-1; shards share one --output folder",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides the protocol's device")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the grid, train nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars; warnings and errors only")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="when user code raises, also print its traceback on stderr (the output's log file always has it)",
    )
    return parser.parse_args(argv)


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


def check_output(output: Path, protocol: Protocol, resume: bool, *, sharded: bool = False) -> None:
    """Never overwrite an earlier run; resume, or join as a shard, only a folder of the same protocol."""
    saved = output / PROTOCOL_FILE
    option = "--resume" if resume else "--shard"
    if sharded and not saved.exists() and not _holds_files(output):
        return  # the first shard into a new folder; with --resume too, so one job script starts and restarts
    if resume or sharded:
        if not saved.exists():
            raise CecoFairError(f"{option}: {output} holds no earlier run (no protocol.yaml)")
        previous = yaml.safe_load(saved.read_text(encoding="utf-8"))
        current = protocol.resolved()
        changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if changed:
            raise CecoFairError(f"{option}: the protocol differs from the one in {saved} in: {', '.join(changed)}")
    elif output.exists() and any(output.iterdir()):
        raise CecoFairError(f"--output: {output} already holds results; choose another folder or add --resume")


def _holds_files(output: Path) -> bool:
    """Whether ``output`` holds anything but hidden files (the lock, a shard's file being written)."""
    return output.is_dir() and any(not path.name.startswith(".") for path in output.iterdir())


def print_grid(protocol: Protocol, output: Path, device: torch.device, shard: Shard) -> None:
    """The dry run's summary on stdout: the shard's runs with their 1-based grid index and shard.

    With a search: the search runs with their drawn values, then what the final phase will train.
    """
    grid = protocol.grid()
    what = "search runs" if protocol.search is not None else "runs"
    lines = [f"protocol {protocol.name!r} is valid: {len(grid)} {what} on {device}, output {output}"]
    mine = shard.share(grid)
    if shard.count > 1:
        lines.append(f"shard {shard}: {len(mine)} of the {len(grid)} runs")
    lines += [f"  {position + 1:>4}  {run.run_id}  (shard {shard}){_values_text(run)}" for position, run in mine]
    search = protocol.search
    if search is not None:
        sections = {"train": to_plain(protocol.train), "probe": to_plain(protocol.probe)}
        methods = [(method.label, method.config) for method in protocol.methods]
        lines.append(f"draws ({search.sampler} sampler; a column per key that every method taking it shares):")
        table = draws_table(search, methods, sections)
        lines.append(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
        rules = ", ".join(search.select)
        if search.finals == FINALS_REPEAT:
            lines.append(
                f"then, per method, condition and repeat, the trial each rule of {rules} picks is that repeat's "
                f"result ({search.repeats} repeats at seeds {search.repeat_seeds(protocol.seeds)}; no run retrained)"
            )
        else:
            lines.append(
                f"then, per method and condition, the trial each rule of {rules} picks is retrained "
                f"at seeds {protocol.seeds} (reseed; a trial picked twice runs once; seed {protocol.seeds[0]}: "
                "its search run)"
            )
    sys.stdout.write("\n".join(lines) + "\n")


def _values_text(run: RunSpec) -> str:
    """``  lr=0.001, temperature=0.1`` for a run of a search, else nothing."""
    if not run.values:
        return ""
    shown = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in run.values.items()
    )
    return f"  {shown}"


def _not_a_traceback(record: logging.LogRecord) -> bool:
    return not getattr(record, TRACEBACK_RECORD, False)


def configure_logging(quiet: bool, traceback: bool = False) -> None:
    """Log lines on stderr (INFO, or WARNING with ``--quiet``; user tracebacks with ``traceback``)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING if quiet else logging.INFO)
            handler.removeFilter(_not_a_traceback)
            if not traceback:
                handler.addFilter(_not_a_traceback)


HELD_RECORDS = 100_000
"""Log records kept at most while the output folder does not exist yet (the checks log a few dozen)."""


@contextlib.contextmanager
def held_records() -> Iterator[list[logging.LogRecord]]:
    """Keep the block's log records for a log file written later (see :func:`log_to_file`).

    The checks before a run (building a split, and with it a decoded-image cache) log before the
    output folder may be written; their lines belong in its ``run.log`` all the same.
    """
    handler = logging.handlers.BufferingHandler(HELD_RECORDS)
    logging.getLogger().addHandler(handler)
    try:
        yield handler.buffer
    finally:
        logging.getLogger().removeHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m ceco_fair.run``; returns the exit status."""
    args = parse_args(argv)
    configure_logging(args.quiet, args.traceback)
    with progress_bars(shown=not args.quiet):
        return _run_cli(args)


def _run_cli(args: argparse.Namespace) -> int:
    """The body of :func:`main`: validate, then run; every user error is one ``error:`` line and exit status 2."""
    session: DistributedSession | None = None
    try:
        shard = parse_shard(args.shard) if args.shard is not None else Shard()
        if shard.count > 1 and args.output is None and not args.dry_run:
            raise CecoFairError("--shard: give --output, the one folder every shard writes into")
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
        check_output(output, protocol, args.resume, sharded=args.shard is not None)
        session.barrier()
        if args.dry_run:
            if session.context.is_main:
                print_grid(protocol, output, device, shard)
            return EXIT_OK
        with held_records() as checks_log:
            check_before_writing(protocol)
        status = run_protocol(
            protocol,
            output,
            device,
            resume=args.resume,
            progress=not args.quiet,
            session=session,
            shard=shard,
            earlier_records=checks_log,
        )
        # every rank leaves the process group together: gloo aborts a rank whose peer tore the group down first
        session.barrier()
        return status
    except CecoFairError as error:
        sys.stderr.write(f"error: {error}\n")
        if args.traceback and isinstance(error, UserCodeError) and error.details:
            sys.stderr.write(error.details)
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished epochs are checkpointed; continue with --resume\n")
        return 130
    finally:
        if session is not None:
            session.close()


if __name__ == "__main__":
    sys.exit(main())
