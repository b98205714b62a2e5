"""Command line: ``python -m ceco_fair.report OUTPUT_DIR [--output FILE]``.

Rebuilds the HTML report of a protocol's output folder from its saved results. A folder the
runner made (it holds ``grid.json``) first has its ``results.json``, ``results.csv`` and
``comparisons.csv`` rebuilt from whatever runs are finished, and the unfinished ones are listed,
so the command works while shards are still running. Exit status 0 on success, 2 with a one-line
message on bad input (a missing folder, a malformed file).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from ceco_fair.common.io import locked
from ceco_fair.errors import CecoFairError
from ceco_fair.report.html import REPORT_FILE, build_report
from ceco_fair.results.folder import rebuild_folder
from ceco_fair.results.layout import GRID_FILE, LOCK_FILE

logger = logging.getLogger(__name__)

USAGE_ERROR_STATUS = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        0 when the report was written.

    Raises:
        SystemExit: With status 2 and a one-line message on stderr when the folder is missing
            or its results are malformed, or when the arguments are invalid.

    """
    parser = argparse.ArgumentParser(
        prog="python -m ceco_fair.report",
        description="Rebuild the interactive HTML report of a protocol's output folder from "
        "its saved results (no retraining).",
    )
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="the results folder")
    parser.add_argument(
        "--output",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"where to write the report (default: OUTPUT_DIR/{REPORT_FILE})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if (args.output_dir / GRID_FILE).is_file():
            state = rebuild_folder(args.output_dir)
            finished = len(state.records)
            logger.info("%d of %d runs finished", finished, finished + len(state.missing))
            for run_id in state.missing:
                logger.info("missing: %s", run_id)
        with locked(args.output_dir / LOCK_FILE) if args.output_dir.is_dir() else contextlib.nullcontext():
            build_report(args.output_dir, output=args.output)
    except CecoFairError as error:
        parser.exit(USAGE_ERROR_STATUS, f"{parser.prog}: error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
