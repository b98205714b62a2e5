import platform
import re
from pathlib import Path

import torch

from ceco_fair.results.manifest import build_manifest, processor_model


def test_processor_model_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 2.10GHz\n\n")
    assert processor_model(cpuinfo) == "Example CPU @ 2.10GHz"
    assert processor_model(tmp_path / "absent") != ""


def expected_processor() -> str:
    """The CPU model as this test reads it, apart from the helper under test (platform's name without one)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"^(?:model name|Model|Processor)\s*:\s*(\S.*)$", text, re.MULTILINE)
        if found:
            return found.group(1).strip()
    return platform.processor() or platform.machine()


def test_manifest_records_the_processor_and_the_thread_count():
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        manifest = build_manifest(torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    processor = expected_processor()
    assert manifest["torch_threads"] == 3
    assert manifest["processor"] == processor
    assert manifest["device"] == f"cpu (3 threads, {processor})"
