"""Interactive, self-contained HTML reports of a protocol's results folder.

``build_report(folder)`` reads the saved results (see :func:`load_results` for the layout) and
writes ``folder/report.html``; ``python -m ceco_fair.report FOLDER`` does the same from the
command line, without retraining anything.
"""

from __future__ import annotations

from ceco_fair.report.html import REPORT_FILE, build_report, render_report
from ceco_fair.report.load import MissingItem, Results, load_results
from ceco_fair.results.seeds import Interval, seed_interval

__all__ = [
    "REPORT_FILE",
    "Interval",
    "MissingItem",
    "Results",
    "build_report",
    "load_results",
    "render_report",
    "seed_interval",
]
