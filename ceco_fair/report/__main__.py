"""Command line: ``python -m ceco_fair.report OUTPUT_DIR [--output FILE]``.

Rebuilds the HTML report of a protocol's output folder from its saved results. Exit status 0
on success, 2 with a one-line message on bad input (a missing folder, a malformed file).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ceco_fair.errors import CecoFairError
from ceco_fair.report.html import REPORT_FILE, build_report

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
        build_report(args.output_dir, output=args.output)
    except CecoFairError as error:
        parser.exit(USAGE_ERROR_STATUS, f"{parser.prog}: error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
