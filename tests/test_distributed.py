"""Data parallelism on CPU with two gloo processes: exact global-batch losses and the torchrun path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from ceco_fair.losses import LOSSES, build_loss
from ceco_fair.training.distributed import DistributedContext
from ceco_fair.training.methods import Contrastive, MethodConfig

WORLD = 2
N_PER_RANK, VIEWS, DIM = 6, 2, 5
NAMES = ["simclr", "supcon", "contex", "fscl", "biascon"]
OPTIONS: dict[str, dict[str, object]] = {"contex": {}, "fscl": {"group_norm": True}}
SIZES: dict[str, dict[str, int]] = {
    "any-ids": {},
    "known-ranges": {"n_classes": 5, "n_groups": 3},  # as in training; labels 3-4 and group 2 are empty
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def global_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    n = WORLD * N_PER_RANK
    features = torch.randn(n, VIEWS, DIM, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, 3, (n,), generator=generator)
    sensitive = torch.randint(0, 2, (n,), generator=generator)
    return features, labels, sensitive


def _worker(rank: int, port: int, folder: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    features, labels, sensitive = global_batch()
    rows = slice(rank * N_PER_RANK, (rank + 1) * N_PER_RANK)
    for name in NAMES:
        for sizes_name, sizes in SIZES.items():
            local = features[rows].clone().requires_grad_(True)
            method = MethodConfig(name, OPTIONS.get(name, {})).build()
            assert isinstance(method, Contrastive)
            compute = method.contrastive_loss(context=DistributedContext(rank, WORLD), **sizes)
            value = compute(local, labels[rows], sensitive[rows])
            value.backward()
            torch.save({"value": value.detach(), "grad": local.grad}, Path(folder) / f"{name}-{sizes_name}-{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every loss's value and local gradients computed by two gloo processes (one spawn for all)."""
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(free_port(), str(folder)), nprocs=WORLD, join=True)
    return folder


@pytest.mark.parametrize("sizes", list(SIZES))
@pytest.mark.parametrize("name", NAMES)
def test_two_process_loss_and_gradients_equal_one_process_on_the_global_batch(
    name: str, sizes: str, two_process_results: Path
) -> None:
    parts = [torch.load(two_process_results / f"{name}-{sizes}-{rank}.pt", weights_only=True) for rank in range(WORLD)]
    features, labels, sensitive = global_batch()
    features.requires_grad_(True)
    expected = build_loss(name, **OPTIONS.get(name, {}))(features, labels, sensitive)
    expected.backward()
    assert features.grad is not None
    # Each process returns world_size × its share; their mean is the global loss, and gradients
    # come back scaled by world_size, which DistributedDataParallel's averaging undoes.
    value = sum(p["value"] for p in parts) / WORLD
    torch.testing.assert_close(value, expected.detach(), rtol=0, atol=1e-5)
    for rank, part in enumerate(parts):
        rows = slice(rank * N_PER_RANK, (rank + 1) * N_PER_RANK)
        torch.testing.assert_close(part["grad"] / WORLD, features.grad[rows], rtol=0, atol=1e-5)
    assert name in LOSSES


def test_tiny_protocol_under_torchrun_writes_the_results_layout(
    write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    protocol = write_protocol(methods=[{"name": "ce"}, {"name": "supcon"}])
    output = tmp_path / "out"
    done = torchrun(protocol, output)
    _, errors = done.communicate(timeout=600)
    assert done.returncode == 0, errors[-3000:]
    table = pd.read_csv(output / "results.csv")
    table = table[table["readout"] == "linear"]
    bias = table[
        table["metric"].isin(["accuracy", "unbiased_accuracy", "bias_aligned_accuracy", "bias_conflicting_accuracy"])
    ]
    assert set(table["method"]) == {"ce", "supcon"} and len(bias) == 8
    assert bias["value"].between(0, 1).all()
    assert table.groupby("run_id")["metric"].nunique().eq(13).all()
    for run_id in table["run_id"].unique():
        history = pd.read_csv(output / "runs" / run_id / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        assert (output / "runs" / run_id / "checkpoint.pt").exists()
    manifest = pd.read_json(output / "manifest.json", typ="series")
    assert manifest["world_size"] == WORLD


def torchrun(protocol: Path, output: Path, *extra: str, background: bool = False) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(WORLD),
        "--master_port",
        str(free_port()),
        "-m",
        "ceco_fair.run",
        str(protocol),
        "--output",
        str(output),
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if background else subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=background,
    )


def test_resume_under_torchrun_ends_with_the_uninterrupted_metrics(
    write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    import signal
    import time

    protocol = write_protocol(methods=[{"name": "supcon"}], train={"epochs": 3, "max_batches_per_epoch": 20})
    run = Path("runs") / "supcon-rho0.99-seed0"
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    first = torchrun(protocol, whole)
    first.communicate(timeout=600)
    assert first.returncode == 0

    process = torchrun(protocol, resumed, background=True)
    checkpoint = resumed / run / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=True)["epoch"] >= 1:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert not (resumed / run / "metrics.json").exists(), "the run ended before it could be interrupted"

    finish = torchrun(protocol, resumed, "--resume")
    _, errors = finish.communicate(timeout=600)
    assert finish.returncode == 0, errors[-3000:]
    assert (whole / run / "metrics.json").read_text() == (resumed / run / "metrics.json").read_text()
    losses = [pd.read_csv(folder / run / "history.csv")["loss"].tolist() for folder in (whole, resumed)]
    assert losses[0] == losses[1]
