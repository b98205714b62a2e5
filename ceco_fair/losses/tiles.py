"""Symmetric tile kernel: every key is an anchor, so each similarity tile serves twice.

When the anchors are exactly the keys (the single-process case), ``s_ik = s_ki``: the kernel
visits the tiles ``(I, J)`` with ``I ≤ J`` of the ``M × M`` similarity matrix once, and each
``exp`` tile feeds the row sums of anchors ``I`` (over keys ``J``) and of anchors ``J`` (over keys
``I``). In the backward pass the weights of both directions meet in one tile
``T = W_IJ + W_JIᵀ``, so ``∂/∂z_I += T z_J / τ`` and ``∂/∂z_J += Tᵀ z_I / τ``: half the matrix
products of the row-block kernel. Memory holds one ``[tile, tile]`` slice (and its weights) at
a time. Used on the unshifted path without clamped terms; see
:mod:`ceco_fair.losses.row_blocks` for everything else.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ceco_fair.losses.problem import (
    BlockProblem,
    cell_coefficients,
    cell_sums,
    default_tile_size,
    denominator_sum,
    unshifted_limit,
)

CELL_PRODUCT_MAX = 32
"""Up to this many cells, a tile's gradient weights come from one ``[tile, 2G]`` product."""


def tiles_apply(keys: Tensor, problem: BlockProblem) -> bool:
    """Whether the symmetric tile kernel solves this problem.

    Args:
        keys: ``[M, D]`` normalised keys.
        problem: the masked log-sum-exp problem.

    Returns:
        True when the anchors are the keys in order, no term is clamped and ``1/τ`` is
        within the unshifted range.
    """
    return not problem.clamped and problem.inv_temperature <= unshifted_limit(keys.dtype) and problem.anchors_are_keys


def _tiles(keys: Tensor, problem: BlockProblem) -> list[slice]:
    size = problem.block_size or default_tile_size(keys.shape[0], keys.device)
    n_keys = keys.shape[0]
    return [slice(s, min(s + size, n_keys)) for s in range(0, n_keys, size)]


def _exp_tile(keys: Tensor, rows: slice, cols: slice, inv_tau: float) -> Tensor:
    """``exp(z_rows z_colsᵀ / τ)`` with the anchor's own entry at 0: ``[|rows|, |cols|]``."""
    tile = (keys[rows] * inv_tau) @ keys[cols].T
    if rows == cols:
        tile.diagonal().fill_(-math.inf)
    return tile.exp_()


def _add_sums(dens: Tensor, problem: BlockProblem, cells: Tensor, total: Tensor, per_cell: Tensor | None) -> None:
    """Add one tile's contribution to the denominators of its anchors (``dens``: ``[n_den, B]``)."""
    for d in range(dens.shape[0]):
        dens[d] += denominator_sum(problem.allowed(d, cells), total, per_cell)


def forward_tiles(keys: Tensor, problem: BlockProblem) -> Tensor:
    """Denominator sums ``Σ_{k ∈ D_d(a)} exp(s_ak)`` of every anchor (= key).

    Args:
        keys: ``[M, D]`` normalised keys, which are also the anchors.
        problem: the masked log-sum-exp problem (see :func:`tiles_apply`).

    Returns:
        ``[n_den, M]`` sums.
    """
    cells, n_cells = problem.key_cell, problem.n_cells
    needs_cells = not problem.every_key(range(len(problem.denominators)))
    dens = keys.new_zeros(len(problem.denominators), keys.shape[0])
    tiles = _tiles(keys, problem)
    for i, rows in enumerate(tiles):
        for cols in tiles[i:]:
            e = _exp_tile(keys, rows, cols, problem.inv_temperature)
            per_cell = cell_sums(e, cells[cols], n_cells) if needs_cells else None
            _add_sums(dens[:, rows], problem, cells[rows], e.sum(1), per_cell)
            if cols != rows:
                per_cell_t = None
                if needs_cells:
                    per_cell_t = e.new_zeros(n_cells, e.shape[1]).index_add_(0, cells[rows], e).T
                _add_sums(dens[:, cols], problem, cells[cols], e.sum(0), per_cell_t)
    return dens


def backward_tiles(keys: Tensor, problem: BlockProblem, coefs: Tensor) -> Tensor:
    """Gradient w.r.t. the keys of ``Σ_{d, a} g_d(a) · lse_d(a)``.

    Args:
        keys: ``[M, D]`` normalised keys, which are also the anchors.
        problem: the masked log-sum-exp problem (see :func:`tiles_apply`).
        coefs: ``[n_den, M]`` ``g_d(a) / den_d(a)`` (0 for empty denominators).

    Returns:
        ``[M, D]`` gradient.
    """
    cells = problem.key_cell
    every_key = problem.every_key(range(len(problem.denominators)))
    row_coef = coefs.sum(0)
    grad_keys = torch.zeros_like(keys)
    inv_tau = problem.inv_temperature
    tiles = _tiles(keys, problem)

    def coefficients(rows: slice) -> Tensor:
        """``[B, G]`` gradient weight of each anchor of ``rows`` on each key cell."""
        return cell_coefficients(problem, cells[rows], {d: c[rows] for d, c in enumerate(coefs)})

    def pair_weights(rows: slice, cols: slice, coef_rows: Tensor) -> Tensor:
        """``weight[r, k] = C_r[cell(k)] + C_k[cell(r)]``: both directions of a tile."""
        coef_cols = coef_rows if cols == rows else coefficients(cols)
        if problem.n_cells <= CELL_PRODUCT_MAX:
            # [C_r, H_r] · [H_k, C_k]ᵀ with H the one-hot cells: one skinny product.
            one_hot_rows = F.one_hot(cells[rows], problem.n_cells).to(keys.dtype)
            one_hot_cols = F.one_hot(cells[cols], problem.n_cells).to(keys.dtype)
            left = torch.cat([coef_rows, one_hot_rows], 1)
            return left @ torch.cat([one_hot_cols, coef_cols], 1).T
        weight = coef_rows.gather(1, cells[cols].expand(coef_rows.shape[0], -1))
        return weight.add_(coef_cols.T.contiguous().index_select(0, cells[rows]))

    for i, rows in enumerate(tiles):
        coef_rows = None if every_key else coefficients(rows)
        for cols in tiles[i:]:
            e = _exp_tile(keys, rows, cols, problem.inv_temperature)
            if coef_rows is None:
                weight = row_coef[rows, None] + row_coef[None, cols]
            else:
                weight = pair_weights(rows, cols, coef_rows)
            tile = e.mul_(weight)
            grad_keys[rows].addmm_(tile, keys[cols], alpha=inv_tau)
            if cols != rows:
                grad_keys[cols].addmm_(tile.T, keys[rows], alpha=inv_tau)
    return grad_keys
