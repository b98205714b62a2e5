"""Shards: one grid split across real parallel processes that write one results folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from tiny_protocol import tiny_protocol_dict

from ceco_fair.results.folder import rebuild_folder
from ceco_fair.results.layout import CLAIM_FILE, GRID_FILE, MANIFEST_FILE, REPORT_FILE, RESULTS_CSV, RUN_FILE, RUNS_DIR
from ceco_fair.results.manifest import merge_manifest
from ceco_fair.run import main
from ceco_fair.runner.shards import Shard, claim_run, parse_shard, read_claim, shard_of

ROOT = Path(__file__).resolve().parents[1]
GRID = ("ce-rho0.99-seed0", "supcon-rho0.99-seed0", "ce-rho0.99-seed1", "supcon-rho0.99-seed1")
SHARD_OF = {run_id: f"{index % 2 + 1}/2" for index, run_id in enumerate(GRID)}


def grid_protocol(path: Path, **overrides: Any) -> Path:
    """2 methods × 2 seeds, two short epochs: the shard tests' grid, in grid order :data:`GRID`."""
    raw = tiny_protocol_dict(
        seeds=[0, 1],
        methods=[{"name": "ce"}, {"name": "supcon"}],
        train={"epochs": 2, "max_batches_per_epoch": 2},
        probe={"epochs": 1},
        eval={"projection_points": 50},
        **overrides,
    )
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def start(protocol: Path, output: Path, *extra: str) -> subprocess.Popen[str]:
    """``python -m ceco_fair.run`` in its own process group, one thread (equal arithmetic everywhere)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ceco_fair.run", str(protocol), "--output", str(output), "--quiet", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for ``process``; its stderr. Fails the test on a non-zero exit."""
    _, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors[-3000:]
    return errors


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run by one process (no shards)."""
    folder = tmp_path_factory.mktemp("reference")
    finish(start(grid_protocol(folder / "protocol.yaml"), folder / "out"))
    return folder / "out"


def run_origins(output: Path) -> dict[str, str]:
    """Each finished run's recorded shard."""
    return {
        path.parent.name: json.loads(path.read_text())["shard"] for path in (output / RUNS_DIR).glob(f"*/{RUN_FILE}")
    }


def test_two_parallel_shards_give_the_one_process_results(reference: Path, tmp_path: Path) -> None:
    protocol, output = grid_protocol(tmp_path / "protocol.yaml", report=True), tmp_path / "out"
    # The second shard starts as a job script restarting itself would: --resume on a new folder.
    shards = [start(protocol, output, "--shard", "1/2"), start(protocol, output, "--shard", "2/2", "--resume")]
    for shard in shards:
        finish(shard)
    table = pd.read_csv(output / RESULTS_CSV)
    assert not table.duplicated(["run_id", "readout", "metric"]).any()
    assert tuple(table["run_id"].drop_duplicates()) == GRID
    # One thread per process: the shards' arithmetic is the single process's, bit for bit.
    assert (output / RESULTS_CSV).read_text() == (reference / RESULTS_CSV).read_text()
    assert (output / "comparisons.csv").read_text() == (reference / "comparisons.csv").read_text()
    assert run_origins(output) == SHARD_OF
    for run_id in GRID:
        record = json.loads((output / RUNS_DIR / run_id / RUN_FILE).read_text())
        assert record["host"] == socket.gethostname() and record["device"].startswith("cpu")
    manifest = json.loads((output / MANIFEST_FILE).read_text())
    assert set(manifest["shards"]) == {"1/2", "2/2"} and manifest["finished"] is not None
    assert all(entry["finished"] for entry in manifest["shards"].values())
    report = (output / REPORT_FILE).read_text(encoding="utf-8")
    assert "4 runs, 4 complete" in report and 'id="missing"' not in report
    for run_id, shard in SHARD_OF.items():
        assert f'<code>{run_id}</code></td><td class="text">complete</td><td class="text">{shard}</td>' in report


def test_a_killed_shard_resumes_and_the_other_is_unaffected(reference: Path, tmp_path: Path) -> None:
    protocol, output = grid_protocol(tmp_path / "protocol.yaml"), tmp_path / "out"
    first, second = start(protocol, output, "--shard", "1/2"), start(protocol, output, "--shard", "2/2")
    checkpoint = output / RUNS_DIR / GRID[0] / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None and not checkpoint.exists():
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    finish(second)
    unfinished = [run_id for run_id in GRID[::2] if not (output / RUNS_DIR / run_id / "metrics.json").exists()]
    assert unfinished, "shard 1 finished before it could be killed"
    assert (read_claim(output / RUNS_DIR / GRID[0]) or {})["pid"] == first.pid
    for run_id in GRID[1::2]:
        assert json.loads((output / RUNS_DIR / run_id / RUN_FILE).read_text())["status"] == "complete"
        assert (read_claim(output / RUNS_DIR / run_id) or {})["pid"] == second.pid

    report = subprocess.run(
        [sys.executable, "-m", "ceco_fair.report", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert report.returncode == 0, report.stderr
    assert all(f"missing: {run_id}" in report.stderr for run_id in unfinished)
    assert set(pd.read_csv(output / RESULTS_CSV)["run_id"]) == set(GRID) - set(unfinished)

    skipped = finish(start(protocol, output, "--shard", "1/2"))
    assert f"{GRID[0]}: claimed by shard 1/2" in skipped
    assert not (output / RUNS_DIR / GRID[0] / "metrics.json").exists()

    finish(start(protocol, output, "--shard", "1/2", "--resume"))
    assert (output / RESULTS_CSV).read_text() == (reference / RESULTS_CSV).read_text()
    assert run_origins(output) == SHARD_OF
    assert json.loads((output / MANIFEST_FILE).read_text())["finished"] is not None


def test_torchrun_inside_a_shard_trains_its_runs_with_every_process(tmp_path: Path) -> None:
    protocol, output = grid_protocol(tmp_path / "protocol.yaml"), tmp_path / "out"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    done = subprocess.run(
        [*torchrun, "-m", "ceco_fair.run", str(protocol), "--output", str(output), "--quiet", "--shard", "2/2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert tuple(pd.read_csv(output / RESULTS_CSV)["run_id"].drop_duplicates()) == GRID[1::2]
    assert run_origins(output) == {run_id: "2/2" for run_id in GRID[1::2]}
    assert sorted(path.name for path in (output / RUNS_DIR).iterdir()) == sorted(GRID[1::2])
    manifest = json.loads((output / MANIFEST_FILE).read_text())
    assert manifest["shards"]["2/2"]["world_size"] == 2 and manifest["finished"] is None


CLAIMANT = """
import sys, time
from pathlib import Path
from ceco_fair.runner.shards import claim_run
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
won = claim_run(Path(sys.argv[1]), {"who": sys.argv[3]}, take_over=False, lock=go.parent / "lock")
print("won" if won else "lost")
"""


def test_exactly_one_of_racing_processes_claims_a_run(tmp_path: Path) -> None:
    folder, go = tmp_path / "runs" / "a", tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMANT, str(folder), str(go), str(index)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(6)
    ]
    time.sleep(1.0)
    go.touch()
    outcomes = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    assert read_claim(folder) == {"who": str(outcomes.index("won"))}
    assert sorted(path.name for path in folder.iterdir()) == [CLAIM_FILE]


def write_claim(folder: Path, **claim: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CLAIM_FILE).write_text(json.dumps(claim))


def test_resume_takes_over_only_the_claims_of_dead_or_distant_processes(tmp_path: Path) -> None:
    host, lock = socket.gethostname(), tmp_path / "lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        cases = {"dead": (host, dead.pid, True), "alive": (host, alive.pid, False), "far": ("elsewhere", 1, True)}
        for name, (holder_host, pid, taken) in cases.items():
            folder = tmp_path / name
            write_claim(folder, host=holder_host, pid=pid)
            assert not claim_run(folder, {"who": "me"}, take_over=False, lock=lock)
            assert claim_run(folder, {"who": "me"}, take_over=True, lock=lock) is taken, name
            assert (read_claim(folder) == {"who": "me"}) is taken, name
    finally:
        alive.kill()
        alive.wait(timeout=60)


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b", "1/0", "2"])
def test_bad_shard_values_are_one_line_errors(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    protocol = grid_protocol(tmp_path / "protocol.yaml")
    assert main([str(protocol), "--output", str(tmp_path / "out"), "--shard", value]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --shard: ") and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_shard_needs_an_output_folder_and_joins_only_the_same_protocol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = grid_protocol(tmp_path / "protocol.yaml")
    assert main([str(protocol), "--shard", "1/2"]) == 2
    assert capsys.readouterr().err.startswith("error: --shard: give --output")
    output = tmp_path / "out"
    output.mkdir()
    (output / "protocol.yaml").write_text(yaml.safe_dump({"name": "other"}))
    assert main([str(protocol), "--output", str(output), "--shard", "1/2", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("error: --shard: the protocol differs")


def test_dry_run_prints_only_the_shards_runs_with_their_grid_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = grid_protocol(tmp_path / "protocol.yaml")
    assert main([str(protocol), "--output", str(tmp_path / "out"), "--shard", "2/2", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = [line.split() for line in lines if line.startswith("  ")]
    assert runs == [["2", GRID[1], "(shard", "2/2)"], ["4", GRID[3], "(shard", "2/2)"]]
    assert "shard 2/2: 2 of the 4 runs" in lines
    assert main([str(protocol), "--output", str(tmp_path / "out"), "--dry-run"]) == 0
    everything = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert tuple(everything) == GRID
    assert not (tmp_path / "out").exists()


def test_shards_partition_the_grid() -> None:
    for count in range(1, 6):
        for position in range(13):
            owners = [index for index in range(1, count + 1) if Shard(index, count).owns(position)]
            assert owners == [shard_of(position, count).index] == [position % count + 1]
    assert parse_shard(" 3/4 ") == Shard(3, 4) and str(Shard(3, 4)) == "3/4"


def test_rebuild_lists_finished_runs_in_grid_order_and_the_missing_ones(tmp_path: Path) -> None:
    (tmp_path / GRID_FILE).write_text(json.dumps({"runs": ["b", "a", "c", "d"]}))
    fields = {"method": "ce", "loss": "ce", "dataset": "biased_mnist", "metric_kind": "bias", "seed": 0}
    for run_id, status in (("a", "complete"), ("b", "failed"), ("c", "running")):
        folder = tmp_path / RUNS_DIR / run_id
        folder.mkdir(parents=True)
        (folder / RUN_FILE).write_text(json.dumps({**fields, "run_id": run_id, "status": status, "shard": "2/3"}))
        (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    state = rebuild_folder(tmp_path)
    assert [record.run_id for record in state.records] == ["b", "a"] and state.missing == ["c", "d"]
    assert state.records[0].metrics == {} and state.records[1].metrics == {"accuracy": 0.5}
    assert all(record.shard == "2/3" for record in state.records)
    table = pd.read_csv(tmp_path / RESULTS_CSV)
    assert table[["run_id", "metric", "value"]].values.tolist() == [["a", "accuracy", 0.5]]
    assert [r["run_id"] for r in json.loads((tmp_path / "results.json").read_text())["runs"]] == ["b", "a"]


def test_the_manifest_keeps_every_shard_and_the_earliest_start() -> None:
    first = {"hostname": "h1", "device": "cpu", "started": "2026-01-01T10:00:00", "finished": "x", "world_size": 1}
    second = {**first, "hostname": "h2", "started": "2026-01-01T11:00:00", "finished": None}
    merged = merge_manifest(merge_manifest(None, first, "1/2", finished=None), second, "2/2", finished="end")
    assert merged["started"] == first["started"] and merged["finished"] == "end" and merged["hostname"] == "h2"
    assert merged["shards"]["1/2"]["hostname"] == "h1" and merged["shards"]["1/2"]["finished"] == "x"
    assert merged["shards"]["2/2"]["hostname"] == "h2" and merged["shards"]["2/2"]["finished"] is None
