"""Throughput of two-view contrastive pretraining, and the share of step time spent on data.

For each encoder, side by side in one run:
  * images/s of full training steps (ConTeX loss, two augmented views per image), measured by
    the trainer itself on a second epoch after a warm-up epoch;
  * the time of the data path alone (batch gathering, host-to-device copy, two batched
    augmentations), measured over the same batches, as a share of the full step time;
  * with --nproc K > 1, the same training under K data-parallel processes (gloo on CPU, one
    thread each) and the scaling ratio against one process;
  * on CUDA, the host synchronisations inside one training step (augmentation, bf16 forward,
    loss, backward, optimiser step), found with torch.cuda.set_sync_debug_mode; the target is none.

Run: python benchmarks/train_throughput.py [--device cpu|cuda] [--nproc 1 2] [--steps 12]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

import torch
import torch.multiprocessing as mp
from host_sync import host_syncs

from ceco_fair.data import BiasedMNIST
from ceco_fair.data.augment import AugmentConfig, BatchAugment
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.batches import chunk_indices, iterate_batches
from ceco_fair.training.distributed import DistributedSession, start_distributed
from ceco_fair.training.loop import (
    MethodConfig,
    MethodModel,
    OptimizerConfig,
    TrainConfig,
    TrainingStep,
    build_method_loss,
    build_optimizer,
    pretrain,
)


def config(batch_size: int, steps: int) -> TrainConfig:
    return TrainConfig(
        epochs=2,
        batch_size=batch_size,
        max_batches_per_epoch=steps,
        optimizer=OptimizerConfig(name="adam", lr=1e-3),
        augment=AugmentConfig(),
        log_every=10**9,
    )


def train_images_per_s(
    arch: str,
    dataset: BiasedMNIST,
    cfg: TrainConfig,
    device: torch.device,
    session: DistributedSession | None = None,
) -> float:
    session = session or DistributedSession()
    torch.manual_seed(0)
    method = MethodConfig("contex", {"temperature": 0.1})
    model = session.prepare_model(MethodModel(build_encoder(arch), method, n_classes=10), device, sync_batchnorm=False)
    history = pretrain(
        model,
        method,
        dataset,
        cfg,
        seed=0,
        device=device,
        progress=False,
        context=session.context,
    )
    return history[-1]["images_per_s"]


def data_seconds_per_step(dataset: BiasedMNIST, cfg: TrainConfig, device: torch.device, repeats: int = 3) -> float:
    augment = BatchAugment(cfg.augment)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
    batches = chunk_indices(order, cfg.batch_size, drop_last=True)[: cfg.max_batches_per_epoch]
    timings = []
    for _ in range(repeats):
        generator = torch.Generator(device=device).manual_seed(0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for images, _, _ in iterate_batches(dataset, batches, device=device):
            views = [augment(images, generator) for _ in range(2)]
            del views
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append((time.perf_counter() - started) / len(batches))
    return statistics.median(timings)


def step_host_syncs(arch: str, dataset: BiasedMNIST, cfg: TrainConfig, device: torch.device) -> str:
    """Host synchronisations of one two-view ConTeX training step on ``device`` ("none" is the target)."""
    method = MethodConfig("contex", {"temperature": 0.1})
    model = DistributedSession().prepare_model(MethodModel(build_encoder(arch), method, n_classes=10), device, False)
    loss = build_method_loss(method, n_classes=dataset.n_classes, n_groups=dataset.n_groups)
    step = TrainingStep(model, method, loss, build_optimizer(model, cfg.optimizer), cfg, device)
    batches = chunk_indices(torch.arange(len(dataset)), cfg.batch_size, drop_last=True)[:1]
    images, targets, sensitive = next(iterate_batches(dataset, batches, device=device))
    generator = torch.Generator(device=device).manual_seed(0)
    return host_syncs(device, lambda: step.update(step.views(images, generator), targets, sensitive, lr=1e-3))


def _worker(rank: int, world: int, port: int, arch: str, cfg: TrainConfig, results: dict[str, float]) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    session = start_distributed("cpu")
    dataset = BiasedMNIST(source="embedded", split="train", rho=0.99)
    ips = train_images_per_s(arch, dataset, cfg, torch.device("cpu"), session)
    if rank == 0:
        results[arch] = ips
    session.close()


def distributed_images_per_s(arch: str, cfg: TrainConfig, world: int) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(world, port, arch, cfg, results), nprocs=world, join=True)
    return float(results[arch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["small_conv", "simple_conv"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8, help="steps per measured epoch")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1], help="process counts (CPU, gloo)")
    args = parser.parse_args()
    device = torch.device(args.device)
    dataset = BiasedMNIST(source="embedded", split="train", rho=0.99)
    cfg = config(args.batch_size, args.steps)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"two-view ConTeX pretraining on BiasedMNIST (embedded), batch {args.batch_size}, {args.steps} steps, {name}")
    print(f"{'encoder':<12} {'images/s':>10} {'step ms':>9} {'data+aug ms':>12} {'data share':>11}")
    for arch in args.archs:
        ips = train_images_per_s(arch, dataset, cfg, device)
        step = args.batch_size / ips
        data = data_seconds_per_step(dataset, cfg, device)
        print(f"{arch:<12} {ips:>10.0f} {step * 1e3:>9.1f} {data * 1e3:>12.2f} {data / step:>10.1%}")
    if device.type == "cuda":
        for arch in args.archs:
            print(f"host synchronisations in one {arch} training step: {step_host_syncs(arch, dataset, cfg, device)}")
    if device.type == "cpu" and any(k > 1 for k in args.nproc):
        print(f"\ndata-parallel scaling on CPU (gloo, global batch {args.batch_size}, cores {os.cpu_count()})")
        print(f"{'encoder':<12} " + " ".join(f"{f'{k} proc img/s':>14}" for k in args.nproc) + f" {'ratio':>7}")
        for arch in args.archs:
            rates = [
                train_images_per_s(arch, dataset, cfg, device) if k == 1 else distributed_images_per_s(arch, cfg, k)
                for k in args.nproc
            ]
            print(f"{arch:<12} " + " ".join(f"{r:>14.0f}" for r in rates) + f" {rates[-1] / rates[0]:>7.2f}")


if __name__ == "__main__":
    main()
