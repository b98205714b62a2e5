"""The metric reference: one Markdown table generated from the specs (README's "Metric reference").

    python -m ceco_fair.metrics.reference   # prints the table README.md holds between its markers

Each row: the name (the key of ``metrics.json`` and ``results.csv``), its label, the definition
computed here with the anchor whose variant it is (:attr:`MetricSpec.variant`), whether higher or
lower is better, the unit, and the kinds of run that record it.
"""

from __future__ import annotations

import sys
from typing import Final

from ceco_fair.metrics.specs import METRIC_SPECS, MetricSpec

START: Final = "<!-- metric-reference:start -->"
END: Final = "<!-- metric-reference:end -->"
"""The markers around the generated table in README.md."""
FAMILY_ORDER: Final = ("bias", "group", "representation", "curve")


def _recorded(spec: MetricSpec) -> str:
    if spec.kind == "curve":
        return "per-epoch curves"
    if spec.kind == "representation":
        return "every run"
    return ", ".join(f"{kind} runs" for kind in spec.runs) or "not yet (function only)"


def reference_markdown() -> str:
    """The table of every metric with a spec, by family, in :data:`METRIC_SPECS` order."""
    lines = [
        "| metric | label | definition (variant) | better | unit | recorded by |",
        "|---|---|---|---|---|---|",
    ]
    for family in FAMILY_ORDER:
        for spec in METRIC_SPECS.values():
            if spec.kind != family:
                continue
            unit = "fraction, shown in %" if spec.unit == "percent" else "plain"
            cells = [f"`{spec.name}`", spec.label, spec.variant, spec.direction, unit, _recorded(spec)]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(reference_markdown() + "\n")
