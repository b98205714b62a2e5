import math

import pandas as pd
import pytest

from ceco_fair.errors import CecoFairError
from ceco_fair.results.convergence import convergence_table, curve_area


def test_curve_area_is_the_mean_height_of_the_trapezoids():
    assert curve_area([1, 2, 3], [0.2, 0.2, 0.2]) == pytest.approx(0.2)
    # trapezoids (0 + 0.4) / 2 * 1 + (0.4 + 0.4) / 2 * 2 = 0.2 + 0.8 = 1.0 over a span of 3
    assert curve_area([1, 2, 4], [0.0, 0.4, 0.4]) == pytest.approx(1.0 / 3)
    assert curve_area([5], [0.7]) == 0.7
    with pytest.raises(CecoFairError, match="at least one measured epoch"):
        curve_area([], [])


def _curves(runs: dict[tuple[float, str, int], list[float]]) -> pd.DataFrame:
    rows = [
        {"rho": rho, "method": method, "seed": seed, "epoch": epoch, "acc": value}
        for (rho, method, seed), values in runs.items()
        for epoch, value in enumerate(values, start=1)
    ]
    return pd.DataFrame(rows)


def test_level_is_shared_by_the_methods_of_a_condition():
    curves = _curves(
        {
            # rho 0.9: fast's final mean is 0.5, slow's 0.9 -> level 0.81 for both
            (0.9, "fast", 0): [0.5, 0.5, 0.5],
            (0.9, "fast", 1): [0.4, 0.5, 0.5],
            (0.9, "slow", 0): [0.1, 0.5, 0.9],
            (0.9, "slow", 1): [0.1, 0.85, 0.9],
            # rho 0.8 has its own level: 0.9 * 0.2
            (0.8, "fast", 0): [0.1, 0.2, 0.2],
            (0.8, "slow", 0): [0.0, 0.0, 0.1],
        }
    )
    table = convergence_table(curves, "acc").set_index(["rho", "method", "seed"])
    assert table.loc[(0.9, "fast", 0), "level"] == pytest.approx(0.81)
    assert table.loc[(0.9, "slow", 1), "level"] == pytest.approx(0.81)
    # a run that never reaches the level counts as epochs + 1; an own-final criterion would give it epoch 1
    assert table.loc[(0.9, "fast", 0), "epochs_to_level"] == 4 and not table.loc[(0.9, "fast", 0), "reached"]
    assert table.loc[(0.9, "slow", 0), "epochs_to_level"] == 3
    assert table.loc[(0.9, "slow", 1), "epochs_to_level"] == 2
    assert table.loc[(0.8, "fast", 0), "level"] == pytest.approx(0.18)
    assert table.loc[(0.8, "fast", 0), "epochs_to_level"] == 2
    assert table.loc[(0.8, "slow", 0), "epochs_to_level"] == 4
    assert table.loc[(0.9, "slow", 1), "area"] == pytest.approx(((0.1 + 0.85) / 2 + (0.85 + 0.9) / 2) / 2)


def test_missing_values_are_dropped_and_bad_arguments_named():
    curves = _curves({(0.9, "a", 0): [0.1, math.nan, 0.3]})
    table = convergence_table(curves, "acc")
    assert table["area"].iloc[0] == pytest.approx((0.1 + 0.3) / 2)  # epochs 1 and 3 only
    with pytest.raises(CecoFairError, match="no column 'nope'"):
        convergence_table(curves, "nope")
    with pytest.raises(CecoFairError, match="share must be in"):
        convergence_table(curves, "acc", share=0)
