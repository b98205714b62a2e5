"""Validation scores of a trained encoder: the numbers the validation selection rules compare.

The primary read-out (the linear probe) that :func:`~ceco_fair.evaluation.auditing.measure` fitted for
the test metrics predicts the validation split; each validation rule of
:data:`ceco_fair.results.selection.RULES` scores those predictions. Nothing is fitted again, and the test
set is not read.
"""

from __future__ import annotations

from ceco_fair.evaluation.probe import Features
from ceco_fair.evaluation.readouts import Predictor
from ceco_fair.results.selection import validation_scores
from ceco_fair.training.batches import as_long


def validation_scores_of(predictor: Predictor, valid: Features, *, kind: str, groups: bool) -> dict[str, float]:
    """Score a fitted read-out on the validation split under every validation rule.

    Args:
        predictor: the fitted read-out (features ``[n, D]`` -> classes ``[n]``).
        valid: the validation split's features ``[n, D]``, targets and sensitive values ``[n]``.
        kind: the dataset's metric kind (``bias`` / ``group``).
        groups: whether the validation split's sensitive values may be read (``val_worst_group``).

    Returns:
        Rule name -> score (``val_accuracy``, and ``val_worst_group`` with ``groups``).
    """
    return validation_scores(
        as_long(valid.targets).numpy(),
        predictor.predict(valid.features).numpy(),
        as_long(valid.sensitive).numpy(),
        kind=kind,
        groups=groups,
    )
