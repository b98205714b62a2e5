"""Overhead of a search beyond its runs: selection, tables and report, against the protocol's wall-clock.

Reads a finished results folder of a protocol with a ``search`` (e.g. ``protocols/selection.yaml``)
and times, side by side in one process:

- ``rebuild_folder``: ``results.json`` / ``results.csv``, ``search.csv``, the selection of every rule
  (``selection.json``) and ``comparisons.csv`` per rule; the runner does it once after each run, once
  when the search ends and once at the end, so it counts ``runs + 2`` times;
- ``build_report``: the HTML report with its selection section, once.

Prints each median (``--repeats``), the overhead they add up to, the protocol's wall-clock (the
manifest's ``started`` to ``finished``, or ``--wall`` seconds) and the ratio. The folder's files are
rewritten with the same content (the rebuild is deterministic).

Run: python benchmarks/selection_overhead.py reports/selection/measured [--wall SECONDS] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

from ceco_fair.report import build_report
from ceco_fair.results.folder import rebuild_folder
from ceco_fair.results.layout import MANIFEST_FILE, RUNS_DIR


def timed(action: object, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``action``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wall_clock(folder: Path) -> float:
    """Seconds from the manifest's ``started`` to its ``finished``."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    if not manifest.get("finished"):
        raise SystemExit(f"{folder}: the protocol has not finished (manifest without 'finished'); give --wall")
    started, finished = (datetime.fromisoformat(manifest[key]) for key in ("started", "finished"))
    return (finished - started).total_seconds()


def main() -> None:
    """Time the rebuild and the report of a folder and print them against its wall-clock."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--wall", type=float, help="the protocol's wall-clock in seconds (default: the manifest)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = sum(1 for path in (args.folder / RUNS_DIR).iterdir() if path.is_dir())
    rebuild = timed(lambda: rebuild_folder(args.folder), args.repeats)
    report = timed(lambda: build_report(args.folder), args.repeats)
    wall = args.wall if args.wall is not None else wall_clock(args.folder)
    overhead = (runs + 2) * rebuild + report
    print(f"runs: {runs}")
    print(f"rebuild_folder (tables + selection): {rebuild:.3f} s x {runs + 2} = {(runs + 2) * rebuild:.2f} s")
    print(f"build_report: {report:.2f} s")
    print(f"overhead: {overhead:.2f} s | protocol wall-clock: {wall:.0f} s | ratio: {100 * overhead / wall:.2f}%")


if __name__ == "__main__":
    main()
