"""The report reads a results folder and writes its page without torch; one module owns each file name."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from report_fixtures import write_biased_mnist_folder, write_group_folder

import ceco_fair
from ceco_fair.results import layout

PACKAGE = Path(ceco_fair.__file__).parent
BLOCK_TORCH = """
import sys

class BlockTorch:
    \"\"\"Refuses to find torch, as on a machine without it.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch is blocked: {name}")
        return None

sys.meta_path.insert(0, BlockTorch())
"""


def run_without_torch(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing torch raises ImportError."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        timeout=120,
        check=False,
    )


def test_torch_is_really_blocked() -> None:
    done = run_without_torch("import torch")
    assert done.returncode != 0 and "torch" in done.stderr


def test_report_builds_without_torch(tmp_path: Path) -> None:
    biased = write_biased_mnist_folder(tmp_path / "biased", seeds=(0, 1), epochs=2, projection_points=50)
    group = write_group_folder(tmp_path / "group", seeds=(0,), projection_points=50)
    done = run_without_torch(
        f"""
        import ceco_fair.metrics.specs, ceco_fair.results.layout, ceco_fair.common.io
        from ceco_fair.report import build_report
        from ceco_fair.report.__main__ import main
        build_report({str(biased)!r})
        assert main([{str(group)!r}]) == 0
        assert "torch" not in sys.modules
        """
    )
    assert done.returncode == 0, done.stderr
    for folder, section in ((biased, 'id="bias"'), (group, 'id="fairness"')):
        assert section in (folder / layout.REPORT_FILE).read_text(encoding="utf-8")


def test_each_results_file_name_is_spelled_in_one_module() -> None:
    names = [entry.name for entry in layout.FILES]
    assert len(set(names)) == len(names)
    for name in names:
        literal = re.compile(rf"[\"']{re.escape(name)}[\"']")
        spelled = sorted(
            str(path.relative_to(PACKAGE))
            for path in PACKAGE.rglob("*.py")
            if literal.search(path.read_text(encoding="utf-8"))
        )
        assert spelled == ["results/layout.py"], (name, spelled)
