"""The report in a real browser: headless Chromium opens it from file:// and draws every figure.

Needs Chromium at /usr/bin/chromium (Debian package ``chromium``) and the ``playwright`` Python
package (a test extra; its own browser download is not used). Without Chromium the browser tests
are skipped, naming the package; under ``CI=true`` they fail instead (``.ci/run`` installs it).
Run as a script to save the README screenshot::

    python tests/test_report_browser.py OUTPUT_DIR/report.html docs/quickstart_report.png
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from report_fixtures import write_audit_folder, write_biased_mnist_folder, write_group_folder

from ceco_fair.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1200, "height": 900}
RENDER_TIMEOUT_MS = 60_000
XSS = "<script>alert(1)</script>"
ALL_FIGURES_DRAWN = """() => {
    const divs = [...document.querySelectorAll('.plotly-graph-div')];
    return divs.length > 0 && divs.every(d => d.querySelector('svg.main-svg, canvas'));
}"""


MISSING_CHROMIUM = (
    "headless Chromium not found at {path}: install the Debian package 'chromium' (apt-get install chromium)"
)


def launch(playwright: Playwright) -> Browser:
    """Start the system's headless Chromium (as root it needs ``--no-sandbox``)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(MISSING_CHROMIUM.format(path=CHROMIUM))
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])


def require_chromium(path: Path, ci: str | None) -> None:
    """Skip the browser tests when ``path`` is missing, naming the package; fail instead when ``ci`` is "true"."""
    if path.exists():
        return
    message = MISSING_CHROMIUM.format(path=path)
    if ci == "true":
        pytest.fail(f"{message} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(message)


def open_report(page: Page, report: Path) -> None:
    """Open a report from file:// and wait until every figure has drawn its SVG or canvas."""
    page.goto(report.resolve().as_uri())
    page.wait_for_function(ALL_FIGURES_DRAWN, timeout=RENDER_TIMEOUT_MS)


def save_screenshot(
    report: Path,
    png: Path,
    *,
    width: int = 1200,
    height: int = 900,
    browser: Browser | None = None,
) -> Path:
    """Save a screenshot of the top of a report (the README picture).

    Args:
        report: The ``report.html`` to show.
        png: Where to write the PNG.
        width: Viewport width in pixels.
        height: Viewport height in pixels (the screenshot is the viewport, not the full page).
        browser: A running browser to use; by default Chromium is started and closed.

    Returns:
        The PNG's path.
    """
    if browser is None:
        with sync_playwright() as playwright:
            chromium = launch(playwright)
            try:
                return save_screenshot(report, png, width=width, height=height, browser=chromium)
            finally:
                chromium.close()
    png.parent.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        open_report(page, report)
        page.screenshot(path=str(png), full_page=False)
    finally:
        page.close()
    return png


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium(CHROMIUM, os.environ.get("CI"))
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def test_without_chromium_the_browser_tests_skip_naming_the_package_and_fail_under_ci(tmp_path: Path) -> None:
    absent = tmp_path / "chromium"
    with pytest.raises(pytest.skip.Exception, match=r"install the Debian package 'chromium'"):
        require_chromium(absent, None)
    with pytest.raises(pytest.fail.Exception, match=r"chromium.*CI=true"):
        require_chromium(absent, "true")
    absent.write_text("")
    require_chromium(absent, "true")  # present: neither skips nor fails


def xss_folder(root: Path) -> Path:
    return write_group_folder(
        root,
        methods=(XSS, "fscl"),
        pairs=((XSS, "race"),),
        groups=(XSS, "B"),
        epochs=2,
        projection_points=50,
        name=XSS,
    )


FOLDERS: dict[str, tuple[Callable[[Path], Path], int]] = {
    "biased_mnist": (
        lambda root: write_biased_mnist_folder(root, rhos=(0.99, 0.997), seeds=(0, 1), epochs=3, projection_points=300),
        4,
    ),
    "group": (
        lambda root: write_group_folder(root, pairs=(("gender", "race"), ("gender", "age")), epochs=3),
        5,
    ),
    "distortion": (
        lambda root: write_biased_mnist_folder(
            root, rhos=(0.9, 0.99), seeds=(0, 1, 2), epochs=3, projection_points=100, diagnostics=True
        ),
        9,
    ),
    "audit": (write_audit_folder, 4),
    "escaping": (xss_folder, 5),
}


class PageWatch:
    """Everything a page reports: console errors, uncaught errors, dialogs, requests."""

    def __init__(self, page: Page) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("dialog", self._dialog)
        page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each folder of :data:`FOLDERS` with its report, built once."""
    root = tmp_path_factory.mktemp("reports")
    return {kind: build_report(write(root / kind)) for kind, (write, _) in FOLDERS.items()}


@pytest.mark.parametrize("kind", list(FOLDERS))
def test_report_renders_in_chromium(kind: str, browser: Browser, reports: dict[str, Path]) -> None:
    report, expected_figures = reports[kind], FOLDERS[kind][1]
    page = browser.new_page(viewport=VIEWPORT)
    watch = PageWatch(page)
    open_report(page, report)
    assert watch.console_errors == []
    assert watch.page_errors == []
    assert watch.dialogs == []
    assert [url for url in watch.requests if not url.startswith(("file://", "data:", "blob:"))] == []
    figures = page.eval_on_selector_all(
        ".plotly-graph-div",
        "divs => divs.map(d => d.querySelectorAll('svg.main-svg, canvas').length > 0)",
    )
    assert figures == [True] * expected_figures
    if kind == "escaping":
        assert page.inner_text("h1") == XSS
        assert XSS in page.inner_text("#summary")
    page.close()


def test_menu_switches_the_view(browser: Browser, reports: dict[str, Path]) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    watch = PageWatch(page)
    open_report(page, reports["biased_mnist"])
    heatmap = "#figure-2"
    before = page.eval_on_selector(heatmap, "d => d.data.map(t => t.visible)")
    assert before == [True] + [False] * 5
    page.click(f"{heatmap} .updatemenu-header-group")
    page.locator(f"{heatmap} .updatemenu-dropdown-button").nth(1).click()
    page.wait_for_function("d => d.data[1].visible === true", arg=page.query_selector(heatmap), timeout=10_000)
    after = page.eval_on_selector(heatmap, "d => d.data.map(t => t.visible)")
    assert after == [False, True] + [False] * 4
    title = page.eval_on_selector(heatmap, "d => d.layout.title.text")
    assert title.endswith("ce · rho=0.997")
    assert watch.console_errors == [] and watch.page_errors == []
    page.close()


def test_save_screenshot(browser: Browser, reports: dict[str, Path], tmp_path: Path) -> None:
    png = save_screenshot(reports["biased_mnist"], tmp_path / "docs" / "report.png", browser=browser)
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1200, 900)
    assert png.stat().st_size < 1_000_000


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python tests/test_report_browser.py REPORT_HTML OUTPUT_PNG")
    save_screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
