"""Speed and peak memory of the contrastive losses against a dense-mask version and the floor.

Run: ``python benchmarks/loss_speed.py [--sizes 256 1024 4096] [--device cpu] [--repeats 5]``

For every batch size N (V views of D-dim features, M = N·V rows) and every loss, it measures one
forward + backward pass of:

* ``ours``: :func:`ceco_fair.losses.build_loss` as training runs it: the labels' and groups'
  ranges given, input value checks off (block-wise engine, recomputing backward; with every row an
  anchor it runs the symmetric tile kernel);
* ``ours-rows`` (contex only): the same loss forced onto the row-block kernel (the kernel used
  for an anchor subset, as in distributed training);
* ``dense``: the same equation written the way the papers' code does it: view-major features,
  full ``M × M`` float masks built with ``mask.repeat``, ``exp`` over the whole matrix, ``log`` of
  masked sums (:func:`dense_loss`; checked equal in value to ``ours`` at the first size);
* ``checkpoint`` (contex only): row blocks with plain autograd ops inside
  ``torch.utils.checkpoint`` per block, instead of the custom autograd function (compare with
  ``ours-rows``);
* ``pml`` (supcon only): pytorch-metric-learning's ``SupConLoss``;
* ``floor``: forward + backward of the similarity matmul alone, ``(z @ z.T).sum()``.

On CUDA it also reports, per loss, the host synchronisations of one ``ours`` forward + backward
(see ``host_sync.py``; the target is none).

Time: median (and minimum) over ``--repeats`` runs after one warm-up, the variants interleaved
round-robin so that load from other processes affects them alike; ratios use the medians. Peak extra memory: on CUDA,
``torch.cuda.max_memory_allocated`` above the memory allocated before the call; on CPU, the
peak of the running sum of tensor allocations minus frees recorded by
``torch.profiler.profile(profile_memory=True)`` during one call, at operator granularity
(memory allocated and freed inside a single operator is not seen). Both count every tensor the
call allocates: activations, saved tensors, masks and gradients.
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from host_sync import host_syncs
from torch import Tensor
from torch.profiler import ProfilerActivity, profile
from torch.utils.checkpoint import checkpoint

from ceco_fair.losses import build_loss

logger = logging.getLogger("loss_speed")

LOSS_NAMES = ("simclr", "supcon", "contex", "fscl", "biascon")
N_GROUPS = 2
TAU_BASE = {"biascon": (0.07, 0.07)}


# ----------------------------------------------------------------------------------------------
# Dense-mask implementation, written the way the papers' code does it.


def dense_loss(
    name: str,
    features: Tensor,
    labels: Tensor,
    sensitive: Tensor,
    *,
    temperature: float,
    base_temperature: float,
) -> Tensor:
    """The same losses with full M × M float masks (view-major rows, ``mask.repeat``)."""
    n_images, n_views, _ = features.shape
    feats = F.normalize(features.float(), dim=2)
    contrast = torch.cat(torch.unbind(feats, dim=1), dim=0)
    logits = torch.div(contrast @ contrast.T, temperature)
    logits_max, _ = torch.max(logits, dim=1, keepdim=True)
    logits = logits - logits_max.detach()
    m = n_images * n_views
    device = features.device
    self_mask = torch.scatter(torch.ones(m, m, device=device), 1, torch.arange(m, device=device).view(-1, 1), 0)
    lab = labels.view(-1, 1)
    sens = sensitive.view(-1, 1)
    same_image = torch.eye(n_images, device=device).repeat(n_views, n_views)
    same_label = torch.eq(lab, lab.T).float().to(device).repeat(n_views, n_views)
    same_sens = torch.eq(sens, sens.T).float().to(device).repeat(n_views, n_views)
    ones = torch.ones_like(same_label)

    def part(positive: Tensor, denominator: Tensor) -> Tensor:
        positive = positive * self_mask
        denominator = denominator * self_mask
        exp_logits = torch.exp(logits) * denominator
        den_sum = exp_logits.sum(1, keepdim=True)
        log_prob = logits - torch.log(den_sum + (den_sum == 0).float())
        n_pos = positive.sum(1)
        valid = ((n_pos > 0) & (den_sum.squeeze(1) > 0)).float()
        mean_log_prob_pos = (positive * log_prob).sum(1) / n_pos.clamp(min=1)
        return -(mean_log_prob_pos * valid).sum() / valid.sum().clamp(min=1)

    if name == "simclr":
        value = part(same_image, ones)
    elif name == "supcon":
        value = part(same_label, ones)
    elif name == "contex":
        value = 0.5 * part(same_label, ones - same_label) + 0.5 * part(same_image, ones)
    elif name == "fscl":
        value = part(same_label, (ones - same_label) * same_sens)
    elif name == "biascon":
        value = part(same_label * (ones - same_sens), ones)
    else:
        raise KeyError(name)
    return value * (temperature / base_temperature)


# ----------------------------------------------------------------------------------------------
# Block-wise ConTeX with torch.utils.checkpoint instead of the custom autograd function.


def checkpoint_contex(
    features: Tensor, labels: Tensor, *, temperature: float, base_temperature: float, block: int
) -> Tensor:
    """ConTeX with class sums for positives and checkpointed per-block log-sum-exps."""
    n_images, n_views, dim = features.shape
    z = F.normalize(features.float().reshape(-1, dim), dim=1)
    m = z.shape[0]
    row_label = labels.repeat_interleave(n_views)
    row_image = torch.arange(n_images, device=z.device).repeat_interleave(n_views)
    _, label_index, label_count = torch.unique(row_label, return_inverse=True, return_counts=True)
    class_sums = z.new_zeros(label_count.numel(), dim).index_add(0, label_index, z)
    image_sums = z.new_zeros(n_images, dim).index_add(0, row_image, z)
    pos_a = (z * (class_sums[label_index] - z)).sum(1) / temperature
    pos_b = (z * (image_sums[row_image] - z)).sum(1) / temperature
    n_pos_a = (label_count[label_index] - 1).to(z.dtype)
    n_pos_b = torch.full_like(n_pos_a, n_views - 1)

    def block_lse(anchors: Tensor, start: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
        rows = torch.arange(anchors.shape[0], device=keys.device) + start
        logits = anchors @ keys.T / temperature
        self_mask = rows[:, None] == torch.arange(m, device=keys.device)[None, :]
        logits = logits.masked_fill(self_mask, -torch.inf)
        same = row_label[rows][:, None] == row_label[None, :]
        lse_b = torch.logsumexp(logits, dim=1)
        lse_a = torch.logsumexp(logits.masked_fill(same, -torch.inf), dim=1)
        return lse_a, lse_b

    parts_a, parts_b = [], []
    for start in range(0, m, block):
        start_t = torch.tensor(start, device=z.device)
        lse_a, lse_b = checkpoint(block_lse, z[start : start + block], start_t, z, use_reentrant=False)
        parts_a.append(lse_a)
        parts_b.append(lse_b)
    lse_a, lse_b = torch.cat(parts_a), torch.cat(parts_b)
    valid_a = (n_pos_a > 0) & torch.isfinite(lse_a)
    loss_a = torch.where(valid_a, lse_a - pos_a / n_pos_a.clamp(min=1), 0.0).sum()
    loss_b = (lse_b - pos_b / n_pos_b).mean()
    value = 0.5 * loss_a / valid_a.sum().clamp(min=1) + 0.5 * loss_b
    return value * (temperature / base_temperature)


# ----------------------------------------------------------------------------------------------
# Measurement.


@dataclass
class Variant:
    """One measured computation: a loss function of (features, labels, sensitive)."""

    loss: str
    impl: str
    fn: Callable[[Tensor, Tensor, Tensor], Tensor]


def _variants(loss_names: list[str], block: int, n_labels: int) -> list[Variant]:
    from pytorch_metric_learning.losses import SupConLoss as PMLSupConLoss

    variants = []
    for name in loss_names:
        tau, base = TAU_BASE.get(name, (0.1, 0.07))
        ours = build_loss(name)
        ours.check_values = False
        sizes = {"n_classes": n_labels, "n_groups": N_GROUPS}
        variants.append(Variant(name, "ours", functools.partial(ours, **sizes)))
        if name == "contex":

            def rows_fn(x: Tensor, y: Tensor, s: Tensor, loss: Any = ours, sizes: dict[str, int] = sizes) -> Tensor:
                # Any anchor order other than the identity selects the row-block kernel.
                order = torch.arange(x.shape[0] * x.shape[1], device=x.device).flip(0)
                value: Tensor = loss.combine(loss.partial_sums(x, y, s, anchor_rows=order, **sizes))
                return value

            variants.append(Variant(name, "ours-rows", rows_fn))
        variants.append(
            Variant(
                name,
                "dense",
                lambda x, y, s, name=name, tau=tau, base=base: dense_loss(
                    name, x, y, s, temperature=tau, base_temperature=base
                ),
            )
        )
        if name == "contex":
            variants.append(
                Variant(
                    name,
                    "checkpoint",
                    lambda x, y, s, tau=tau, base=base: checkpoint_contex(
                        x, y, temperature=tau, base_temperature=base, block=block
                    ),
                )
            )
        if name == "supcon":
            pml = PMLSupConLoss(temperature=tau)

            def pml_fn(x: Tensor, y: Tensor, s: Tensor, pml: PMLSupConLoss = pml) -> Tensor:
                n, v, d = x.shape
                value: Tensor = pml(x.reshape(n * v, d), y.repeat_interleave(v))
                return value * (0.1 / 0.07)

            variants.append(Variant(name, "pml", pml_fn))

    def floor(x: Tensor, y: Tensor, s: Tensor) -> Tensor:
        z = x.reshape(-1, x.shape[2])
        return (z @ z.T).sum()

    variants.append(Variant("-", "floor", floor))
    return variants


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run_once(variant: Variant, x: Tensor, y: Tensor, s: Tensor) -> None:
    x.grad = None
    variant.fn(x, y, s).backward()


def _time(
    variants: list[Variant], x: Tensor, y: Tensor, s: Tensor, repeats: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Median and minimum milliseconds of each variant, runs interleaved round-robin."""
    times: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    for variant in variants:  # warm-up
        _run_once(variant, x, y, s)
    for _ in range(repeats):
        for i, variant in enumerate(variants):
            _sync(x.device)
            start = time.perf_counter()
            _run_once(variant, x, y, s)
            _sync(x.device)
            times[i].append(time.perf_counter() - start)
    median = {i: statistics.median(ts) * 1e3 for i, ts in times.items()}
    best = {i: min(ts) * 1e3 for i, ts in times.items()}
    return median, best


def _peak_memory(variant: Variant, x: Tensor, y: Tensor, s: Tensor) -> float:
    """Peak extra bytes allocated during one forward + backward (see module docstring)."""
    x.grad = None
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        before = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        _run_once(variant, x, y, s)
        torch.cuda.synchronize(x.device)
        return float(torch.cuda.max_memory_allocated(x.device) - before)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _run_once(variant, x, y, s)
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return float(peak)


def _report_host_syncs(device: torch.device, variants: list[Variant], x: Tensor, y: Tensor, s: Tensor) -> None:
    for variant in variants:
        if variant.impl == "ours":
            outcome = host_syncs(device, functools.partial(_run_once, variant, x, y, s))
            print(f"host synchronisations, {variant.loss} forward + backward: {outcome}")


@torch.no_grad()
def _check_equal(loss_names: list[str], x: Tensor, y: Tensor, s: Tensor) -> None:
    for name in loss_names:
        tau, base = TAU_BASE.get(name, (0.1, 0.07))
        ours = float(build_loss(name)(x, y, s))
        dense = float(dense_loss(name, x, y, s, temperature=tau, base_temperature=base))
        line = f"check {name:8s} ours={ours:.6f} dense={dense:.6f} |diff|={abs(ours - dense):.2e}"
        if name == "contex":
            ckpt = float(checkpoint_contex(x, y, temperature=tau, base_temperature=base, block=256))
            line += f" checkpoint={ckpt:.6f}"
        print(line)
        if abs(ours - dense) > 1e-4 * max(1.0, abs(dense)):
            raise SystemExit(f"{name}: ours {ours} differs from dense {dense}")


def main() -> None:
    """Parse arguments, measure every size, print the tables and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--losses", nargs="+", default=list(LOSS_NAMES), choices=LOSS_NAMES)
    parser.add_argument("--checkpoint-block", type=int, default=256)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(
        f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"D={args.dim} V={args.views} labels={args.labels} repeats={args.repeats} fp32"
    )
    variants = _variants(args.losses, args.checkpoint_block, args.labels)
    for index, n in enumerate(args.sizes):
        x = torch.randn(n, args.views, args.dim, device=device).requires_grad_()
        y = torch.randint(0, args.labels, (n,), device=device)
        s = torch.randint(0, N_GROUPS, (n,), device=device)
        if index == 0:
            _check_equal(args.losses, x, y, s)
            _report_host_syncs(device, variants, x, y, s)
        times, best = _time(variants, x, y, s, args.repeats)
        memory = {i: (float("nan") if args.skip_memory else _peak_memory(v, x, y, s)) for i, v in enumerate(variants)}
        floor_i = len(variants) - 1
        print(f"\nN={n} M={n * args.views}")
        print(f"{'loss':8s} {'impl':11s} {'median ms':>10s} {'min ms':>8s} {'peak MiB':>9s} {'x floor':>8s}")
        for i, v in enumerate(variants):
            print(
                f"{v.loss:8s} {v.impl:11s} {times[i]:10.1f} {best[i]:8.1f} {memory[i] / 2**20:9.1f} "
                f"{times[i] / times[floor_i]:8.2f}"
            )
        print("ratios (ours vs dense): speed-up = dense time / ours; memory = dense peak / ours")
        for name in args.losses:
            ours_i = next(i for i, v in enumerate(variants) if v.loss == name and v.impl == "ours")
            dense_i = next(i for i, v in enumerate(variants) if v.loss == name and v.impl == "dense")
            print(
                f"  {name:8s} speed-up {times[dense_i] / times[ours_i]:5.2f}x   "
                f"ours/floor {times[ours_i] / times[floor_i]:5.2f}x   "
                f"memory dense/ours {memory[dense_i] / max(memory[ours_i], 1.0):6.1f}x"
            )
        if "contex" in args.losses:
            _print_targets(n, variants, times, memory)


def _print_targets(n: int, variants: list[Variant], times: dict[int, float], memory: dict[int, float]) -> None:
    """The contex targets: at N = 1024 >= 3x dense and <= 2.5x floor; at N = 4096 memory <= 1/8."""
    index = {(v.loss, v.impl): i for i, v in enumerate(variants)}
    ours, dense, floor = index["contex", "ours"], index["contex", "dense"], index["-", "floor"]
    if n == 1024:
        speed_up = times[dense] / times[ours]
        ratio = times[ours] / times[floor]
        print(f"target contex N=1024: speed-up vs dense >= 3x: {speed_up:.2f}x {_met(speed_up >= 3)}")
        print(f"target contex N=1024: time <= 2.5x floor: {ratio:.2f}x {_met(ratio <= 2.5)}")
    if n == 4096 and memory[ours] == memory[ours]:
        share = memory[ours] / memory[dense]
        print(f"target contex N=4096: peak memory <= 1/8 of dense: 1/{1 / share:.0f} {_met(share <= 1 / 8)}")


def _met(ok: bool) -> str:
    return "(met)" if ok else "(NOT met)"


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
