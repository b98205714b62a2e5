"""The report's figures, section by section; each figure is a ``(results) -> Figure | None``.

A function returns ``None`` when the results hold nothing it could show, so a report shows a
figure only where data exists. :data:`SECTIONS` lists the sections in page order; each figure
module owns its sections (:mod:`~ceco_fair.report.figures_bias`,
:mod:`~ceco_fair.report.figures_group`, :mod:`~ceco_fair.report.figures_run`), and
:mod:`~ceco_fair.report.style` their shared look.
"""

from __future__ import annotations

import ceco_fair.report.figures_bias as figures_bias
import ceco_fair.report.figures_distortion as figures_distortion
import ceco_fair.report.figures_group as figures_group
import ceco_fair.report.figures_readouts as figures_readouts
import ceco_fair.report.figures_run as figures_run
import ceco_fair.report.figures_scores as figures_scores
from ceco_fair.report.figures_bias import bias_accuracy_by_rho, bias_heatmaps, mean_matrix
from ceco_fair.report.figures_group import fairness_accuracy_scatter, fairness_gaps, group_rates
from ceco_fair.report.figures_run import projections, training_curves
from ceco_fair.report.style import HEIGHT, SectionSpec

SECTIONS: tuple[SectionSpec, ...] = (
    figures_bias.SECTION,
    figures_group.SECTION,
    figures_scores.SECTION,
    figures_readouts.SECTION,
    *figures_distortion.SECTIONS,
    *figures_run.SECTIONS,
)

__all__ = [
    "HEIGHT",
    "SECTIONS",
    "bias_accuracy_by_rho",
    "bias_heatmaps",
    "fairness_accuracy_scatter",
    "fairness_gaps",
    "group_rates",
    "mean_matrix",
    "projections",
    "training_curves",
]
