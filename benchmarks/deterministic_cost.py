"""The cost of deterministic algorithms (``train.deterministic``): the same training with and without.

Side by side in one run, alternating the two settings over rounds: a short ConTeX pretraining of
an encoder on embedded BiasedMNIST, timed from the first to the last step, and the ratio of the
deterministic time to the default time (median over rounds), in wall-clock time and in this
process's CPU time (steadier on a shared machine; on CUDA only wall-clock time counts). Also checks
that the deterministic setting gives bit-identical weights when repeated. Deterministic mode also
fills uninitialised memory (``torch.utils.deterministic.fill_uninitialized_memory``), part of its cost.

Run: python benchmarks/deterministic_cost.py [--device cpu|cuda] [--arch small_conv] [--steps 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ceco_fair.data import BiasedMNIST
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.determinism import deterministic_mode, prepare_environment
from ceco_fair.training.loop import MethodConfig, MethodModel, OptimizerConfig, TrainConfig, pretrain


def train_once(
    arch: str, dataset: BiasedMNIST, steps: int, device: torch.device, deterministic: bool
) -> tuple[float, float, dict[str, torch.Tensor]]:
    """Wall-clock and CPU seconds of one short pretraining, and the final weights."""
    config = TrainConfig(
        epochs=1,
        batch_size=128,
        max_batches_per_epoch=steps,
        optimizer=OptimizerConfig(name="adam", lr=1e-3),
        log_every=10**9,
    )
    method = MethodConfig("contex", {"temperature": 0.1}, projection_dim=64)
    torch.manual_seed(0)
    model = MethodModel(build_encoder(arch, feature_dim=64), method, dataset.n_classes)
    with deterministic_mode(deterministic, device):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started, cpu_started = time.perf_counter(), time.process_time()
        pretrain(model, method, dataset, config, seed=0, device=device, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, cpu_seconds, {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--arch", default="small_conv")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prepare_environment(True)
    device = torch.device(args.device)
    dataset = BiasedMNIST(source="embedded", split="train", rho=0.99, seed=0)
    train_once(args.arch, dataset, 2, device, deterministic=False)  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    cpu_times: dict[bool, list[float]] = {False: [], True: []}
    weights: list[dict[str, torch.Tensor]] = []
    for _ in range(args.rounds):
        for deterministic in (False, True):
            seconds, cpu_seconds, state = train_once(args.arch, dataset, args.steps, device, deterministic)
            times[deterministic].append(seconds)
            cpu_times[deterministic].append(cpu_seconds)
            if deterministic:
                weights.append(state)
    repeatable = all(torch.equal(weights[0][name], other[name]) for other in weights[1:] for name in weights[0])
    print(f"{args.arch} on {args.device}, {args.steps} ConTeX steps of 128 images, {args.rounds} rounds")
    for name, measured in (("wall-clock", times), ("CPU", cpu_times)):
        default, strict = statistics.median(measured[False]), statistics.median(measured[True])
        ratios = [s / d for d, s in zip(measured[False], measured[True], strict=True)]
        print(
            f"  {name:10s} default {default:.3f} s, deterministic {strict:.3f} s: "
            f"ratio of medians {strict / default:.2f}x (per round {min(ratios):.2f}-{max(ratios):.2f}x)"
        )
    print(f"  deterministic weights identical over rounds: {repeatable}")


if __name__ == "__main__":
    main()
