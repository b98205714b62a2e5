import torch

from ceco_fair.results.manifest import build_manifest, processor_model


def test_processor_model_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 2.10GHz\n\n")
    assert processor_model(cpuinfo) == "Example CPU @ 2.10GHz"
    assert processor_model(tmp_path / "absent") != ""


def test_manifest_records_the_processor_and_the_thread_count():
    manifest = build_manifest(torch.device("cpu"))
    assert manifest["torch_threads"] == torch.get_num_threads()
    assert manifest["processor"] == processor_model()
    assert manifest["processor"] in manifest["device"]
