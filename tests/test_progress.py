"""Progress bars: one switch for the process, the CLI's ``--quiet``."""

from __future__ import annotations

import pytest

from ceco_fair.common.progress import progress_bar, progress_bars


def test_a_bar_is_drawn_unless_switched_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress_bar(range(3), desc="counting")) == [0, 1, 2]
    assert "counting" in capsys.readouterr().err
    with progress_bars(shown=False):
        assert list(progress_bar(range(3), desc="counting")) == [0, 1, 2]
        bar = progress_bar(total=2, desc="by hand")
        bar.update(2)
        bar.close()
    assert capsys.readouterr().err == ""


def test_a_hidden_bar_stays_hidden_when_bars_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bars(shown=True):
        list(progress_bar(range(3), desc="counting", hidden=True))
    assert capsys.readouterr().err == ""


def test_the_setting_comes_back_after_the_block_even_when_it_raises(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), progress_bars(shown=False):
        raise RuntimeError("stop")
    list(progress_bar(range(2), desc="after"))
    assert "after" in capsys.readouterr().err
