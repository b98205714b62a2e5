"""Memory-lean masked log-sum-exp with an exact, recomputing backward pass.

:func:`masked_logsumexp` solves a :class:`~ceco_fair.losses.problem.BlockProblem` without ever
holding an ``M × M`` matrix: the symmetric tile kernel (:mod:`ceco_fair.losses.tiles`) when
every key is an anchor, the row-block kernel (:mod:`ceco_fair.losses.row_blocks`) otherwise.
Both recompute the similarities in the backward pass instead of storing them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, autograd
from torch.autograd.function import once_differentiable

from ceco_fair.losses.problem import BlockProblem, log_or_zero, ratio_or_zero
from ceco_fair.losses.row_blocks import backward_rows, forward_rows
from ceco_fair.losses.tiles import backward_tiles, forward_tiles, tiles_apply


def masked_logsumexp(keys: Tensor, problem: BlockProblem) -> Tensor:
    """Per-anchor masked log-sum-exp values (and clamp remainders), differentiable in ``keys``.

    Args:
        keys: ``[M, D]`` L2-normalised key embeddings, float32 or float64; anchors are the rows
            ``keys[problem.anchor_pos]``.
        problem: cells, denominators, clamped terms, temperature and block size.

    Returns:
        ``[n_denominators + n_clamped, A]`` tensor of ``keys.dtype``: rows ``d`` hold
        ``lse_d(a)`` (0 where the denominator is empty), the following rows hold ``R(a)`` of
        each clamped term.
    """
    out: Tensor = _MaskedLogSumExp.apply(keys, problem)
    return out


class _MaskedLogSumExp(autograd.Function):
    @staticmethod
    def forward(ctx: Any, keys: Tensor, problem: BlockProblem) -> Tensor:
        tiles = tiles_apply(keys, problem)
        if tiles:
            dens = forward_tiles(keys, problem)
            shifts = None
            excess = keys.new_zeros(0, dens.shape[1])
        else:
            dens, shifts, excess = forward_rows(keys, problem)
        lse = log_or_zero(dens, shifts)
        ctx.save_for_backward(keys, dens, lse, *(() if shifts is None else (shifts,)))
        ctx.problem = problem
        ctx.tiles = tiles
        return lse if tiles else torch.cat([lse, excess])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        keys, dens, lse, *maybe_shifts = ctx.saved_tensors
        problem: BlockProblem = ctx.problem
        if ctx.tiles:
            return backward_tiles(keys, problem, ratio_or_zero(grad_out, dens)), None
        shifts = maybe_shifts[0] if maybe_shifts else None
        return backward_rows(keys, problem, grad_out, dens, lse, shifts), None
