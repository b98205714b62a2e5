"""What per-epoch tracking (``eval.track_every: 1``) costs on the quickstart's training.

Side by side in one run, alternating to share the machine's noise: ConTeX pretraining of the quickstart
(small_conv, BiasedMNIST embedded, ρ = 0.99, batch 256, quickstart augmentation) for a few epochs
without tracking and with an EpochTracker after every epoch (kNN bank and queries of
``--points`` images, two views of the queries). Prints the median time of each and the overhead
ratio; the issue's target is at most 15% of the run's time.

Run: python benchmarks/tracking_cost.py [--epochs 3] [--repeats 3] [--points 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ceco_fair.data import BiasedMNIST
from ceco_fair.data.augment import AugmentConfig
from ceco_fair.evaluation.tracking import EpochTracker
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.loop import MethodConfig, MethodModel, OptimizerConfig, TrainConfig, pretrain


def run_once(train: BiasedMNIST, test: BiasedMNIST, epochs: int, track_every: int, points: int) -> float:
    torch.manual_seed(0)
    augment = AugmentConfig(crop_scale=(0.6, 1.0), rotation=10.0)
    config = TrainConfig(
        epochs=epochs,
        batch_size=256,
        warmup_epochs=1,
        optimizer=OptimizerConfig(name="adam", lr=0.002, weight_decay=1e-4),
        augment=augment,
    )
    method = MethodConfig(name="contex", loss_kwargs={"temperature": 0.1})
    model = MethodModel(build_encoder("small_conv", feature_dim=128), method, n_classes=10)
    device = torch.device("cpu")
    tracker = EpochTracker(
        train, test, kind="bias", augment=augment, seed=0, device=device, points=points, batch_size=512
    )
    started = time.perf_counter()
    pretrain(
        model, method, train, config, seed=0, device=device, progress=False, track=tracker, track_every=track_every
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    train = BiasedMNIST(source="embedded", split="train", rho=0.99, seed=0)
    test = BiasedMNIST(source="embedded", split="test", seed=0)
    plain: list[float] = []
    tracked: list[float] = []
    for _ in range(args.repeats):
        plain.append(run_once(train, test, args.epochs, 0, args.points))
        tracked.append(run_once(train, test, args.epochs, 1, args.points))
    base, with_tracking = statistics.median(plain), statistics.median(tracked)
    print(f"{args.epochs} epochs of ConTeX pretraining on the quickstart data, median of {args.repeats}:")
    print(f"  without tracking            {base:8.2f} s")
    print(f"  track_every: 1 ({args.points} points) {with_tracking:8.2f} s")
    print(f"  tracking overhead: {with_tracking / base - 1:+.1%} of the untracked time (target: at most +15%)")


if __name__ == "__main__":
    main()
