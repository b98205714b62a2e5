"""Row-block kernel: any anchor subset, any temperature, clamped terms.

Anchors are processed in blocks of rows; only one ``[block, M]`` slice of the similarity
matrix exists at a time. Within a block, ``exp(s)`` is reduced cell by cell into ``[block, G]``
and a denominator's sum adds up its allowed cells (sums of non-negative terms only). The
backward pass recomputes each block, turns it in place into ``∂L/∂s = Σ_d g_d · softmax_d``
(one gather of per-cell weights) and feeds it to two matrix products.

When ``1/τ`` exceeds :func:`~ceco_fair.losses.problem.unshifted_limit`, every denominator
gets its own exponential pass shifted by its own row maximum; otherwise all denominators of
a row share one unshifted pass. Only the clamped terms build boolean ``[block, M]`` masks
(their positives, pair by pair).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ceco_fair.losses.problem import (
    BlockProblem,
    ClampedTerm,
    cell_coefficients,
    cell_sums,
    default_block_size,
    denominator_sum,
    log_or_zero,
    ratio_or_zero,
    unshifted_limit,
)


class _RowBlocks:
    """Per-block computations shared by the forward and the backward pass."""

    def __init__(self, keys: Tensor, problem: BlockProblem) -> None:
        self.keys = keys
        self.problem = problem
        self.n_den = len(problem.denominators)
        self.unshifted = problem.inv_temperature <= unshifted_limit(keys.dtype)
        self.exp_cap = 0.5 * math.log(torch.finfo(keys.dtype).max)
        n_anchors = problem.anchor_pos.numel()
        size = problem.block_size or default_block_size(keys.shape[0], keys.device)
        self.slices = [slice(s, min(s + size, n_anchors)) for s in range(0, n_anchors, size)]
        # Denominators read by each exponential pass.
        self.passes: tuple[tuple[int, ...], ...] = (
            (tuple(range(self.n_den)),) if self.unshifted else tuple((d,) for d in range(self.n_den))
        )

    def logits(self, rows: slice) -> tuple[Tensor, Tensor]:
        """Anchors scaled by ``1/τ`` (``[B, D]``) and the block's logits ``[B, M]``."""
        pos = self.problem.anchor_pos[rows]
        scaled = self.keys[pos] * self.problem.inv_temperature
        logits = scaled @ self.keys.T
        logits[torch.arange(pos.numel(), device=pos.device), pos] = -math.inf
        return scaled, logits

    def allowed(self, rows: slice, d: int) -> Tensor | None:
        return self.problem.allowed(d, self.problem.anchor_cell[rows])

    def sums(self, e: Tensor, rows: slice, dens: tuple[int, ...]) -> dict[int, Tensor]:
        """``Σ_{k ∈ D_d(a)} e_ak`` of each denominator ``d`` in ``dens``: ``[B]`` each."""
        total = e.sum(1)
        per_cell = None
        if not self.problem.every_key(dens):
            per_cell = cell_sums(e, self.problem.key_cell, self.problem.n_cells)
        return {d: denominator_sum(self.allowed(rows, d), total, per_cell) for d in dens}

    def row_max(self, logits: Tensor, rows: slice, d: int) -> Tensor:
        """Row maximum of the logits over ``D_d(a)`` (0 where empty): ``[B]``."""
        allowed = self.allowed(rows, d)
        if allowed is None:
            best = logits.amax(1)
        else:
            start = logits.new_full((logits.shape[0], self.problem.n_cells), -math.inf)
            index = self.problem.key_cell.expand(logits.shape[0], -1)
            cell_max = start.scatter_reduce_(1, index, logits, "amax", include_self=True)
            best = torch.where(allowed, cell_max, -math.inf).amax(1)
        return torch.where(torch.isfinite(best), best, 0.0)

    def exp(self, logits: Tensor, shift: Tensor | None, in_place: bool) -> Tensor:
        """``exp(logits − shift)``; off-denominator entries are capped so they stay finite."""
        if shift is None:
            return logits.exp_() if in_place else logits.exp()
        shifted = logits.sub_(shift[:, None]) if in_place else logits - shift[:, None]
        return shifted.clamp_(max=self.exp_cap).exp_()

    def clamped_in(self, dens: tuple[int, ...]) -> list[tuple[int, ClampedTerm]]:
        """Clamped terms (with their index) whose denominator is read by a pass."""
        return [(c, t) for c, t in enumerate(self.problem.clamped) if t.denominator in dens]

    def active(self, logits: Tensor, rows: slice, term: ClampedTerm, lse: Tensor, den: Tensor) -> Tensor:
        """``[B, M]`` bool: positives whose log-ratio ``s_ap − lse`` is positive (clamped)."""
        mask = term.positives.mask(rows)
        mask &= logits > lse[:, None]
        mask &= (den > 0)[:, None]
        return mask

    def row_coef(self, coefs: dict[int, Tensor]) -> Tensor | None:
        """The common row coefficient when every denominator is "every key" (else None)."""
        if not self.problem.every_key(tuple(coefs)):
            return None
        return torch.stack(list(coefs.values())).sum(0)

    def weights_(self, e: Tensor, rows: slice, coefs: dict[int, Tensor]) -> Tensor:
        """Turn ``e`` in place into ``Σ_d coef_d · e · [k ∈ D_d]``."""
        row_coef = self.row_coef(coefs)
        if row_coef is not None:
            return e.mul_(row_coef[:, None])
        per_cell = cell_coefficients(self.problem, self.problem.anchor_cell[rows], coefs)
        index = self.problem.key_cell.expand(e.shape[0], -1)
        return e.mul_(per_cell.gather(1, index))


def forward_rows(keys: Tensor, problem: BlockProblem) -> tuple[Tensor, Tensor | None, Tensor]:
    """Denominator sums, shifts and clamp remainders of every anchor.

    Args:
        keys: ``[M, D]`` normalised keys.
        problem: the masked log-sum-exp problem.

    Returns:
        ``dens`` ``[n_den, A]`` (sums of ``exp(s − shift)``), ``shifts`` ``[n_den, A]`` (None on
        the unshifted path) and ``excess`` ``[n_clamped, A]`` (``R(a)``).
    """
    blocks = _RowBlocks(keys, problem)
    n_anchors = problem.anchor_pos.numel()
    dens = keys.new_zeros(blocks.n_den, n_anchors)
    shifts = None if blocks.unshifted else keys.new_zeros(blocks.n_den, n_anchors)
    excess = keys.new_zeros(len(problem.clamped), n_anchors)
    for rows in blocks.slices:
        _, logits = blocks.logits(rows)
        for pi, group in enumerate(blocks.passes):
            clamped = blocks.clamped_in(group)
            shift = None if shifts is None else blocks.row_max(logits, rows, group[0])
            last = pi == len(blocks.passes) - 1
            e = blocks.exp(logits, shift, in_place=last and not clamped)
            sums = blocks.sums(e, rows, group)
            for d in group:
                dens[d, rows] = sums[d]
                if shifts is not None and shift is not None:
                    shifts[d, rows] = shift
            for c, term in clamped:
                den = sums[term.denominator]
                lse = log_or_zero(den, shift)
                active = blocks.active(logits, rows, term, lse, den)
                excess[c, rows] = torch.where(active, logits - lse[:, None], 0.0).sum(1)
    return dens, shifts, excess


def backward_rows(
    keys: Tensor,
    problem: BlockProblem,
    grad_out: Tensor,
    dens: Tensor,
    lse: Tensor,
    shifts: Tensor | None,
) -> Tensor:
    """Gradient w.r.t. the keys of ``Σ grad_out · [lse; R]``.

    Args:
        keys: ``[M, D]`` normalised keys.
        problem: the masked log-sum-exp problem.
        grad_out: ``[n_den + n_clamped, A]`` upstream gradient.
        dens: ``[n_den, A]`` saved denominator sums.
        lse: ``[n_den, A]`` saved log-sum-exps.
        shifts: ``[n_den, A]`` saved shifts, or None on the unshifted path.

    Returns:
        ``[M, D]`` gradient.
    """
    blocks = _RowBlocks(keys, problem)
    n_den = blocks.n_den
    coefs = ratio_or_zero(grad_out[:n_den], dens)
    grad_keys = torch.zeros_like(keys)
    inv_tau = problem.inv_temperature
    for rows in blocks.slices:
        pos = problem.anchor_pos[rows]
        scaled, logits = blocks.logits(rows)
        block_coefs = {d: coefs[d, rows] for d in range(n_den)}
        extras: list[tuple[Tensor, Tensor]] = []
        for c, term in enumerate(problem.clamped):
            d = term.denominator
            active = blocks.active(logits, rows, term, lse[d, rows], dens[d, rows])
            grad_r = grad_out[n_den + c, rows]
            # R = Σ_active (s_ap − lse): ∂R/∂lse = −(number of active positives).
            grad_lse = grad_out[d, rows] - grad_r * active.sum(1)
            block_coefs[d] = ratio_or_zero(grad_lse, dens[d, rows])
            extras.append((active, grad_r))
        row_coef = blocks.row_coef(block_coefs)
        if blocks.unshifted and row_coef is not None and not extras:
            # ∂L/∂s = row_coef · e: fold the row scale into the two products.
            e = logits.exp_()
            grad_keys.addmm_(e.T, scaled * row_coef[:, None])
            grad_keys.index_add_(0, pos, (e @ keys).mul_(row_coef[:, None]), alpha=inv_tau)
            continue
        weights: Tensor | None = None
        for pi, group in enumerate(blocks.passes):
            shift = None if shifts is None else shifts[group[0], rows]
            e = blocks.exp(logits, shift, in_place=pi == len(blocks.passes) - 1)
            e = blocks.weights_(e, rows, {d: block_coefs[d] for d in group})
            weights = e if weights is None else weights.add_(e)
        assert weights is not None
        for active, grad_r in extras:
            weights.addcmul_(active.to(weights.dtype), grad_r[:, None])
        # weights[b, k] = ∂L/∂s_bk with s_bk = scaled_b · keys_k.
        grad_keys.addmm_(weights.T, scaled)
        grad_keys.index_add_(0, pos, weights @ keys, alpha=inv_tau)
    return grad_keys
