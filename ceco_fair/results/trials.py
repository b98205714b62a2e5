"""The paired view across a search space: every method against the baseline at the same trials. Torch-free.

Under the stratified sampler trial ``t`` of repeat ``r`` is one configuration the methods share
(the same learning rate, weight decay, temperature, ...; only a method's own keys differ), so
"is A better than B at the same settings?" is answered by the search itself, without another run:
for every (repeat, trial) both methods completed, the difference ``d = A − B`` of a metric, and
over those trials

    median(d),  win share = share of trials where d is better (by the metric's direction),
    worst = the least favourable d,  best = the most favourable d.

A pair counts only if every drawn value the two runs share is equal (a protocol written with
``sampler: random`` draws per method, so its trials share nothing and the table is empty). The
metrics are the test metrics of ``search.csv`` (``test:<metric>``, linear read-out) and the
validation rules' scores. ``paired_trials.csv`` holds the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ceco_fair.common.io import atomic_write_text
from ceco_fair.metrics.specs import METRIC_SPECS
from ceco_fair.results.layout import PAIRED_TRIALS_COLUMNS, PAIRED_TRIALS_FILE, SEARCH_COLUMNS
from ceco_fair.results.selection import RULES, TEST_PREFIX, rule_score


def _shared_values_equal(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """Whether two ``search.csv`` rows agree on every drawn value both hold (their configurations are shared)."""
    fixed = set(SEARCH_COLUMNS)
    for key in set(mine) & set(theirs):
        if key in fixed or key in RULES or key.startswith(TEST_PREFIX):
            continue
        if mine[key] != theirs[key]:
            return False
    return True


def _higher_is_better(column: str) -> bool:
    """A test metric's direction from its spec; a rule's score is always higher-is-better."""
    if column.startswith(TEST_PREFIX):
        return METRIC_SPECS[column[len(TEST_PREFIX) :]].direction == "higher"
    return True


def paired_trials(rows: Sequence[Mapping[str, Any]], baseline: str) -> pd.DataFrame:
    """Per method, condition and metric: the distribution of its per-trial difference from ``baseline``.

    Args:
        rows: ``search.csv`` rows (:func:`~ceco_fair.results.selection.search_rows`).
        baseline: the baseline method's label.

    Returns:
        Columns :data:`PAIRED_TRIALS_COLUMNS`: ``n_trials`` pairs, the ``median`` difference, the
        ``win_share`` (fraction of pairs better than the baseline), the ``worst`` and ``best`` pair.
    """
    index: dict[tuple[str, str, int, int], Mapping[str, Any]] = {
        (str(row["method"]), str(row["condition"]), int(row.get("repeat", 0)), int(row["trial"])): row for row in rows
    }
    columns = [
        *(rule for rule in RULES if any(rule in row for row in rows)),
        *dict.fromkeys(key for row in rows for key in row if key.startswith(TEST_PREFIX)),
    ]
    methods = [m for m in dict.fromkeys(str(row["method"]) for row in rows) if m != baseline]
    conditions = list(dict.fromkeys(str(row["condition"]) for row in rows))
    table = []
    for method in methods:
        for condition in conditions:
            pairs = [
                (mine, index[(baseline, *key[1:])])
                for key, mine in index.items()
                if key[0] == method and key[1] == condition and (baseline, *key[1:]) in index
            ]
            pairs = [(mine, theirs) for mine, theirs in pairs if _shared_values_equal(mine, theirs)]
            for column in columns:
                differences = np.array(
                    [rule_score(mine, column) - rule_score(theirs, column) for mine, theirs in pairs]
                )
                differences = differences[np.isfinite(differences)]
                if not len(differences):
                    continue
                sign = 1.0 if _higher_is_better(column) else -1.0
                oriented = sign * differences
                table.append(
                    [
                        method,
                        baseline,
                        condition,
                        column,
                        len(differences),
                        float(np.median(differences)),
                        float(np.mean(oriented > 0)),
                        float(sign * oriented.min()),
                        float(sign * oriented.max()),
                    ]
                )
    return pd.DataFrame(table, columns=list(PAIRED_TRIALS_COLUMNS))


def write_paired_trials(folder: Path, rows: Sequence[Mapping[str, Any]], baseline: str | None) -> pd.DataFrame:
    """Write ``folder/paired_trials.csv`` atomically (no table without a baseline)."""
    table = paired_trials(rows, baseline) if rows and baseline else pd.DataFrame(columns=list(PAIRED_TRIALS_COLUMNS))
    atomic_write_text(folder / PAIRED_TRIALS_FILE, table.to_csv(index=False))
    return table
