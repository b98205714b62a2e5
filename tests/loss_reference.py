"""Slow, obviously-correct reference of the contrastive losses, one anchor at a time, in float64.

Written from the papers' definitions (SimCLR, SupCon, ConTeX, FSCL, BiasCon; see the README's loss table),
independently of the package's engine (no class sums, no blocks, no masks):

    ℓ(i) = −(1/|P(i)|) Σ_{p ∈ P(i)} [ s_ip − log Σ_{k ∈ D(i)} exp(s_ik) ],   s_ik = z_i·z_k / τ

with z the L2-normalised rows, the anchor excluded from P(i) and D(i), each term the mean of ℓ
over anchors whose P(i) and D(i) are non-empty (0 if there is none), and the loss
(τ/τ_base)·Σ_t λ_t·term_t.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

DEFAULTS = {
    "simclr": (0.1, 0.07),
    "supcon": (0.1, 0.07),
    "contex": (0.1, 0.07),
    "fscl": (0.1, 0.07),
    "biascon": (0.07, 0.07),
}

Rule = Callable[[int, int], bool]


class _Rows:
    """The M = N·V rows of a batch with their image, label and sensitive value."""

    def __init__(self, features: Tensor, labels: Tensor | None, sensitive: Tensor | None) -> None:
        n, v, d = features.shape
        flat = features.to(torch.float64).reshape(n * v, d)
        self.z = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.m = n * v
        self.image = [row // v for row in range(self.m)]
        self.label = [int(labels[i]) for i in self.image] if labels is not None else None
        self.sens = [int(sensitive[i]) for i in self.image] if sensitive is not None else None

    def same_image(self, i: int, k: int) -> bool:
        return self.image[i] == self.image[k]

    def same_label(self, i: int, k: int) -> bool:
        assert self.label is not None
        return self.label[i] == self.label[k]

    def same_sens(self, i: int, k: int) -> bool:
        assert self.sens is not None
        return self.sens[i] == self.sens[k]


def _term(
    rows: _Rows,
    positive: Rule,
    denominator: Rule,
    temperature: float,
    *,
    clamp: bool = False,
    group_norm: bool = False,
) -> Tensor:
    """Mean over valid anchors of ℓ(i) (0, still attached to the graph, if none is valid)."""
    losses = []
    for i in range(rows.m):
        pos = [p for p in range(rows.m) if p != i and positive(i, p)]
        den = [k for k in range(rows.m) if k != i and denominator(i, k)]
        if not pos or not den:
            continue
        logits = (rows.z @ rows.z[i]) / temperature
        log_denominator = torch.logsumexp(logits[den], dim=0)
        log_ratios = [logits[p] - log_denominator for p in pos]
        if clamp:
            log_ratios = [torch.clamp(r, max=0.0) for r in log_ratios]
        total = torch.stack(log_ratios).sum()
        if group_norm:
            n_same = sum(1 for p in pos if rows.same_sens(i, p))
            if n_same == 0:
                continue
            weight = (rows.m / 8.0) / (n_same + 1)
            losses.append(-total / n_same * weight)
        else:
            losses.append(-total / len(pos))
    if not losses:
        return rows.z.sum() * 0.0
    return torch.stack(losses).mean()


def reference_loss(
    name: str,
    features: Tensor,
    labels: Tensor | None = None,
    sensitive: Tensor | None = None,
    *,
    temperature: float | None = None,
    base_temperature: float | None = None,
    label_weight: float = 0.5,
    self_weight: float = 0.5,
    clamp: bool = False,
    group_norm: bool = False,
) -> Tensor:
    """Float64 reference value of a named loss for ``features`` ``[N, V, D]``.

    Rows are flattened sample-major (row n·V + v), although no result depends on the order.
    """
    default_tau, default_base = DEFAULTS[name]
    tau = default_tau if temperature is None else temperature
    base = default_base if base_temperature is None else base_temperature
    rows = _Rows(features, labels, sensitive)

    def anything(i: int, k: int) -> bool:
        return True

    def other_label(i: int, k: int) -> bool:
        return not rows.same_label(i, k)

    if name == "simclr":
        value = _term(rows, rows.same_image, anything, tau)
    elif name == "supcon":
        value = _term(rows, rows.same_label, anything, tau)
    elif name == "contex":
        part_a = _term(rows, rows.same_label, other_label, tau, clamp=clamp)
        part_b = _term(rows, rows.same_image, anything, tau)
        value = label_weight * part_a + self_weight * part_b
    elif name == "fscl":

        def other_label_same_sens(i: int, k: int) -> bool:
            return not rows.same_label(i, k) and rows.same_sens(i, k)

        value = _term(rows, rows.same_label, other_label_same_sens, tau, group_norm=group_norm)
    elif name == "biascon":

        def same_label_other_bias(i: int, k: int) -> bool:
            return rows.same_label(i, k) and not rows.same_sens(i, k)

        value = _term(rows, same_label_other_bias, anything, tau)
    else:
        raise KeyError(name)
    return value * (tau / base)
