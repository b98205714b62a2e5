"""The masked log-sum-exp problem solved by the block-wise kernels, and their shared helpers.

For anchors ``a`` (a subset of the keys) and keys ``k`` with logits ``s_ak = z_a·z_k / τ``, the
kernels compute, for every anchor and every denominator rule ``d``::

    lse_d(a) = log Σ_{k ∈ D_d(a)} exp(s_ak)            (0 when D_d(a) is empty)

and, for clamped terms, ``R(a) = Σ_{p ∈ P(a)} max(0, s_ap − lse_d(a))``, so that the clamped
log-ratio sum ``Σ_p min(0, s_ap − lse_d(a))`` equals the unclamped one minus ``R(a)``.

Every key belongs to a *cell* (e.g. its label, or its (sensitive, label) pair); a denominator
(:class:`Denominator`) says, from per-cell attributes, which key cells an anchor of a given
cell contrasts against. The anchor itself is never in its denominator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

CPU_BLOCK_ELEMENTS = 1 << 22
"""Default number of similarity entries per block or tile on CPU (16 MiB in float32)."""

ACCELERATOR_BLOCK_ELEMENTS = 1 << 24
"""Default number of similarity entries per block or tile on accelerators (64 MiB in float32)."""


CPU_TILE_MIN = 512
"""Smallest default tile side on CPU."""

CPU_TILES_PER_SIDE = 8
"""Default number of tiles per side of the similarity matrix on CPU (within the tile bounds)."""


def _budget(device: torch.device) -> int:
    return CPU_BLOCK_ELEMENTS if device.type == "cpu" else ACCELERATOR_BLOCK_ELEMENTS


def default_block_size(n_keys: int, device: torch.device) -> int:
    """Anchor rows per ``[block, n_keys]`` similarity slice of the row-block kernel.

    Args:
        n_keys: number of keys M (columns of the similarity matrix).
        device: device the similarities live on.

    Returns:
        The number of anchor rows per block (at least 1).
    """
    return max(1, _budget(device) // max(1, n_keys))


def default_tile_size(n_keys: int, device: torch.device) -> int:
    """Side of the square ``[tile, tile]`` similarity tiles of the symmetric kernel.

    Smaller tiles skip more of the matrix (only tiles on or above the diagonal are computed,
    a fraction ``(k + 1) / 2k`` of the work for ``k`` tiles per side) but run smaller matrix
    products. On CPU about eight tiles per side of 512 to 2048 rows measured fastest (2-core
    x86, D = 128, M = 2048 and 8192); accelerators use the largest tile of the budget.

    Args:
        n_keys: number of keys M.
        device: device the similarities live on.

    Returns:
        The tile side (at least 1).
    """
    largest = max(1, math.isqrt(_budget(device)))
    if device.type != "cpu":
        return largest
    return min(largest, max(CPU_TILE_MIN, -(-n_keys // CPU_TILES_PER_SIDE)))


def unshifted_limit(dtype: torch.dtype) -> float:
    """Largest ``1/τ`` for which one unshifted exponential pass is exact.

    Every ``exp(s)`` with ``|s| ≤ 1/τ`` then lies within ``exp(±0.45·log(1/tiny))``: normal,
    and sums of up to ``10**16`` of them stay finite.

    Args:
        dtype: floating-point dtype of the computation.

    Returns:
        The limit (about 39 for float32, 318 for float64).
    """
    return 0.45 * -math.log(torch.finfo(dtype).tiny)


@dataclass(frozen=True)
class PositiveMatch:
    """Positives of an anchor described by identifiers; used by clamped terms only.

    Key ``k`` is a positive of anchor ``a`` when ``key_same[k] == anchor_same[a]`` and, if given,
    ``key_differ[k] != anchor_differ[a]``. The anchor itself never counts (its logit is −inf).

    Attributes:
        key_same: ``[M]`` int64 identifiers of the keys that must match.
        anchor_same: ``[A]`` int64 identifiers of the anchors that must match.
        key_differ: optional ``[M]`` int64 identifiers of the keys that must differ.
        anchor_differ: optional ``[A]`` int64 identifiers of the anchors that must differ.
    """

    key_same: Tensor
    anchor_same: Tensor
    key_differ: Tensor | None = None
    anchor_differ: Tensor | None = None

    def mask(self, rows: slice) -> Tensor:
        """Boolean positive mask of a block of anchors.

        Args:
            rows: the block's anchors, a slice of ``range(A)``.

        Returns:
            ``[B, M]`` bool tensor, True where the key is a positive of the anchor.
        """
        mask = self.anchor_same[rows, None] == self.key_same[None, :]
        if self.key_differ is not None and self.anchor_differ is not None:
            mask &= self.anchor_differ[rows, None] != self.key_differ[None, :]
        return mask


@dataclass(frozen=True)
class ClampedTerm:
    """A term whose log-ratios are clamped at 0; its output is ``R(a)``.

    Attributes:
        denominator: index of the denominator rule the log-ratios use.
        positives: which keys are the anchor's positives.
    """

    denominator: int
    positives: PositiveMatch


@dataclass(frozen=True)
class Denominator:
    """Which key cells an anchor contrasts against, from attributes of the cells.

    An anchor of cell ``c`` contrasts against the keys of cell ``g`` when
    ``differ[c] != differ[g]`` (if ``differ`` is given) and ``same[c] == same[g]`` (if ``same``
    is given); with neither, against every key but itself. With ``union``, also against the keys
    that the other rule allows (e.g. CnC's "same label, other sensitive value" together with
    "other label, same sensitive value").

    Attributes:
        differ: ``[G]`` int64 cell attribute that must differ (e.g. the cell's label).
        same: ``[G]`` int64 cell attribute that must match (e.g. the cell's sensitive value).
        union: another rule whose allowed cells are added to these.
    """

    differ: Tensor | None = None
    same: Tensor | None = None
    union: Denominator | None = None

    @property
    def every_key(self) -> bool:
        """Whether the denominator is every key but the anchor."""
        own = self.differ is None and self.same is None
        return own or (self.union is not None and self.union.every_key)

    def allowed(self, anchor_cells: Tensor) -> Tensor | None:
        """``[B, G]`` bool: the key cells each anchor contrasts against (None: every key).

        Args:
            anchor_cells: ``[B]`` int64 cells of some anchors.

        Returns:
            The allowed cells per anchor, or None for every key.
        """
        if self.every_key:
            return None
        allowed = None
        if self.differ is not None:
            allowed = self.differ[anchor_cells, None] != self.differ[None, :]
        if self.same is not None:
            same = self.same[anchor_cells, None] == self.same[None, :]
            allowed = same if allowed is None else allowed & same
        if self.union is not None:
            other = self.union.allowed(anchor_cells)
            assert allowed is not None and other is not None  # neither is every key (checked above)
            allowed = allowed | other
        return allowed


@dataclass(frozen=True)
class BlockProblem:
    """Everything except the key embeddings that defines the masked log-sum-exp problem.

    Attributes:
        anchor_pos: ``[A]`` int64 row of each anchor among the keys.
        anchors_are_keys: whether the anchors are every key in order (``anchor_pos = arange(M)``),
            known to the caller without reading ``anchor_pos`` back.
        anchor_cell: ``[A]`` int64 cell of each anchor.
        key_cell: ``[M]`` int64 cell of each key, in ``range(n_cells)``.
        n_cells: number of cells G.
        denominators: one :class:`Denominator` per denominator rule.
        clamped: clamped terms whose ``R(a)`` is also returned.
        inv_temperature: ``1/τ``.
        block_size: anchors per block (row-block kernel) or tile side (symmetric kernel);
            None for the defaults of :func:`default_block_size` / :func:`default_tile_size`.
    """

    anchor_pos: Tensor
    anchors_are_keys: bool
    anchor_cell: Tensor
    key_cell: Tensor
    n_cells: int
    denominators: tuple[Denominator, ...]
    clamped: tuple[ClampedTerm, ...]
    inv_temperature: float
    block_size: int | None = None

    def allowed(self, d: int, anchor_cells: Tensor) -> Tensor | None:
        """``[B, G]`` bool allowed cells of denominator ``d`` for some anchors (None: every key).

        Args:
            d: denominator index.
            anchor_cells: ``[B]`` cells of the anchors.

        Returns:
            See :meth:`Denominator.allowed`.
        """
        return self.denominators[d].allowed(anchor_cells)

    def every_key(self, dens: tuple[int, ...] | range) -> bool:
        """Whether all the given denominators are "every key but the anchor"."""
        return all(self.denominators[d].every_key for d in dens)


def cell_sums(values: Tensor, cells: Tensor, n_cells: int) -> Tensor:
    """Sum each row of ``values`` cell by cell.

    Args:
        values: ``[B, K]`` non-negative values.
        cells: ``[K]`` int64 cell of each column.
        n_cells: number of cells G.

    Returns:
        ``[B, G]`` per-cell row sums.
    """
    return values.new_zeros(values.shape[0], n_cells).index_add_(1, cells, values)


def denominator_sum(allowed: Tensor | None, row_total: Tensor, per_cell: Tensor | None) -> Tensor:
    """A denominator's sum from the row total or the per-cell sums of its allowed cells.

    Args:
        allowed: ``[B, G]`` bool allowed cells, or None for every key.
        row_total: ``[B]`` sum over every key.
        per_cell: ``[B, G]`` per-cell sums (needed when ``allowed`` is given).

    Returns:
        ``[B]`` sums; each adds non-negative terms only.
    """
    if allowed is None:
        return row_total
    assert per_cell is not None
    return torch.where(allowed, per_cell, 0.0).sum(1)


def cell_coefficients(problem: BlockProblem, anchor_cells: Tensor, coefs: dict[int, Tensor]) -> Tensor:
    """Per-cell gradient weights ``Σ_d coef_d · [cell ∈ D_d]`` of some anchors: ``[B, G]``.

    Args:
        problem: the denominators.
        anchor_cells: ``[B]`` cells of the anchors.
        coefs: ``{d: [B] coefficient}`` of the denominators to include.

    Returns:
        ``[B, G]`` weights.
    """
    first = next(iter(coefs.values()))
    per_cell = first.new_zeros(first.shape[0], problem.n_cells)
    for d, coef in coefs.items():
        allowed = problem.allowed(d, anchor_cells)
        per_cell += coef[:, None] if allowed is None else torch.where(allowed, coef[:, None], 0.0)
    return per_cell


def log_or_zero(den: Tensor, shift: Tensor | None) -> Tensor:
    """``log(den) + shift`` where the denominator is non-empty (``den > 0``), 0 elsewhere."""
    safe = torch.where(den > 0, den, 1.0)
    value = safe.log() if shift is None else safe.log() + shift
    return torch.where(den > 0, value, 0.0)


def ratio_or_zero(grad: Tensor, den: Tensor) -> Tensor:
    """``grad / den`` where the denominator is non-empty, 0 elsewhere."""
    return torch.where(den > 0, grad / torch.where(den > 0, den, 1.0), 0.0)
