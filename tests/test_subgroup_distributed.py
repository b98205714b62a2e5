"""Subgroup methods under data parallelism (two gloo processes on CPU): state and gradients of the global batch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import free_port, torchrun

from ceco_fair.training.groups import GroupDRO, LfF, Reweight, SubgroupMethod

WORLD, N_LOCAL, N, CLASSES, GROUPS = 2, 5, 16, 3, 2
OPTIONS = {"groupdro": {"eta": 0.3}, "reweight": {}, "lff": {"q": 0.7, "ema": 0.6}}
KINDS: dict[str, type[SubgroupMethod]] = {"groupdro": GroupDRO, "reweight": Reweight, "lff": LfF}


def data() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Training labels and two global batches: indices ``[WORLD·N_LOCAL]``, logits and biased logits."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, CLASSES, (N,), generator=generator)
    sensitive = torch.randint(0, GROUPS, (N,), generator=generator)
    indices = [torch.randperm(N, generator=generator)[: WORLD * N_LOCAL] for _ in range(2)]
    logits = [torch.randn(WORLD * N_LOCAL, CLASSES, generator=generator) for _ in range(2)]
    biased = [torch.randn(WORLD * N_LOCAL, CLASSES, generator=generator) for _ in range(2)]
    return targets, sensitive, indices, logits, biased


def run_steps(objective: SubgroupMethod, rows: slice) -> list[dict[str, torch.Tensor]]:
    """Two steps on the ``rows`` of each global batch: loss, gradients and the state after each."""
    targets, _, indices, logits, biased = data()
    results = []
    for index, step_logits, step_biased in zip(indices, logits, biased, strict=True):
        mine = step_logits[rows].clone().requires_grad_(True)
        other = step_biased[rows].clone().requires_grad_(True)
        value = objective.batch_loss((other, mine), targets[index[rows]], index[rows])
        value.backward()
        results.append(
            {"value": value.detach(), "grad": mine.grad, "biased_grad": other.grad, **objective.state_dict()}
        )
    return results


def _worker(rank: int, port: int, folder: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    targets, sensitive, *_ = data()
    for name, kind in KINDS.items():
        objective = kind(**OPTIONS[name]).bind(targets, sensitive, CLASSES, GROUPS, torch.device("cpu"))
        steps = run_steps(objective, slice(rank * N_LOCAL, (rank + 1) * N_LOCAL))
        torch.save(steps, Path(folder) / f"{name}-{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("subgroup-ddp")
    mp.spawn(_worker, args=(free_port(), str(folder)), nprocs=WORLD, join=True)
    return folder


@pytest.mark.parametrize("name", list(KINDS))
def test_two_processes_hold_the_state_and_gradients_of_one_process_on_the_global_batch(
    name: str, two_processes: Path
) -> None:
    targets, sensitive, *_ = data()
    single = KINDS[name](**OPTIONS[name]).bind(targets, sensitive, CLASSES, GROUPS, torch.device("cpu"))
    expected = run_steps(single, slice(None))
    parts = [torch.load(two_processes / f"{name}-{rank}.pt", weights_only=True) for rank in range(WORLD)]
    for step, wanted in enumerate(expected):
        value = sum(part[step]["value"] for part in parts) / WORLD  # the loop's mean over processes
        torch.testing.assert_close(value, wanted["value"], rtol=1e-5, atol=1e-6)
        for rank, part in enumerate(parts):
            rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
            # DistributedDataParallel averages the processes' gradients: each local one is WORLD × its share.
            torch.testing.assert_close(part[step]["grad"] / WORLD, wanted["grad"][rows], rtol=1e-5, atol=1e-7)
            if wanted["biased_grad"] is not None:  # LfF's biased model
                torch.testing.assert_close(
                    part[step]["biased_grad"] / WORLD, wanted["biased_grad"][rows], rtol=1e-5, atol=1e-7
                )
            for key in set(wanted) - {"value", "grad", "biased_grad"}:
                torch.testing.assert_close(part[step][key], wanted[key], rtol=1e-6, atol=1e-9)


def test_subgroup_methods_run_under_torchrun(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    methods = [
        {"name": "groupdro"},
        {"name": "jtt", "stage_one_epochs": 1, "upweight": 3},
        {"name": "lff"},
        {"name": "cnc", "stage_one_epochs": 1},  # its projection head idles in stage one: DDP must not stall
    ]
    protocol = write_protocol(methods=methods, eval={"projection_points": 50})
    output = tmp_path / "out"
    done = torchrun(protocol, output)
    _, errors = done.communicate(timeout=900)
    assert done.returncode == 0, errors[-3000:]
    table = pd.read_csv(output / "results.csv")
    assert set(table["method"]) == {"groupdro", "jtt", "lff", "cnc"}
    assert table.groupby("method")["readout"].nunique().eq(3).all()
    for method in ("groupdro", "jtt", "lff", "cnc"):
        checkpoint = torch.load(output / "runs" / f"{method}-rho0.99-seed0" / "checkpoint.pt", weights_only=True)
        assert checkpoint["epoch"] == 2 and checkpoint["objective"] != {}
