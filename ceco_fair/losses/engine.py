"""One masked InfoNCE engine behind every contrastive loss of the package.

Embeddings: ``M`` rows ``z_k`` (L2-normalised here), logits ``s_ik = z_i·z_k / τ``. A *term* is
a positive rule ``P`` and a denominator rule ``D``; for an anchor ``i``::

    ℓ(i) = −(1/|P(i)|) Σ_{p ∈ P(i)} [ s_ip − log Σ_{k ∈ D(i)} exp(s_ik) ]

The anchor is never its own positive nor in its own denominator. An anchor is *valid* for a term
when ``P(i)`` and ``D(i)`` are both non-empty (and, with group normalisation, when it has a
positive sharing its sensitive value); invalid anchors are left out of the sum and of the count.

Positive sums never touch the similarity matrix: ``Σ_{p ∈ P(i)} z_i·z_p = z_i·(C − z_i)`` with
``C`` the sum of the embeddings of the anchor's group (its image for ``"instance"``, its class for
``"label"``; the class sum minus its (label, sensitive) cell sum for ``"label_other_sensitive"``).
The log-sum-exp terms are computed block by block (:mod:`ceco_fair.losses.blockwise`).

Distributed use: pass every embedding of the global batch as ``keys`` and only this process's
rows as ``anchor_rows``; each :class:`TermSum` holds the sum of the per-anchor losses of those
anchors and their number, so that a caller all-reduces the counts and divides.

Host synchronisation: with ``id_ranges`` (the number of images, labels and sensitive values) and
``validate=False`` nothing in the forward or backward pass reads a value back to the host, so a
GPU step runs without waiting. Without a range, the ids are compacted with ``torch.unique``, whose
output size depends on the data (one synchronisation each).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ceco_fair.errors import CecoFairError
from ceco_fair.losses.blockwise import masked_logsumexp
from ceco_fair.losses.problem import BlockProblem, ClampedTerm, Denominator, PositiveMatch

logger = logging.getLogger(__name__)

PositiveRule = Literal["instance", "label", "label_other_sensitive"]
DenominatorRule = Literal["all", "other_label", "other_label_same_sensitive", "label_xor_sensitive"]

POSITIVE_RULES: tuple[PositiveRule, ...] = ("instance", "label", "label_other_sensitive")
DENOMINATOR_RULES: tuple[DenominatorRule, ...] = (
    "all",
    "other_label",
    "other_label_same_sensitive",
    "label_xor_sensitive",
)

CELL_GRID_MAX = 1024
"""Up to this many (sensitive, label) pairs (or the number of keys, if larger) every pair gets a
cell of a fixed grid; beyond, only the pairs present do (compacted with ``torch.unique``). The
per-block cell tables are ``[block, cells]``, so the grid is bounded to stay cheap."""

FSCL_GROUP_NORM_DIVISOR = 8.0
"""FSCL+ scales each anchor by ``C/(n + 1)`` with ``C = M / 8`` (Park et al. 2022)."""

_KEYS_SHAPE = "keys must be a 2-D tensor [M, D] with M >= 1 and D >= 1, got shape {shape}"
_IDS_SHAPE = "{name} must be a 1-D tensor of {m} integers (one per key row), got shape {shape}"
_IDS_DTYPE = "{name} must hold integers, got dtype {dtype}"
_IDS_MISSING = "{name} is required by the {rule!r} rule of term {index} and was not given"
_TEMPERATURE = "temperature must be a finite number > 0, got {value!r}"
_BLOCK_SIZE = "block_size must be an integer >= 1, got {value!r}"
_ANCHOR_ROWS = "anchor_rows must be a slice or a 1-D integer tensor of distinct rows in [0, {m}), got {value}"
_TERM_RULE = "term {index}: {field} must be one of {valid}, got {value!r}"
_GROUP_NORM_RULE = "term {index}: group_norm needs positives 'label', got {value!r}"
_NO_TERMS = "terms must hold at least one Term"
_ID_RANGE = "{arg} must be an integer >= 1 or None, got {value!r}"
_IDS_OUT_OF_RANGE = "{name} must lie in [0, {n}) (the given range), found values in [{low}, {high}]"


@dataclass(frozen=True)
class Term:
    """One InfoNCE term: which keys are positives and which form the denominator.

    Attributes:
        positives: ``"instance"`` (other views of the anchor's image), ``"label"`` (same label),
            or ``"label_other_sensitive"`` (same label and a different sensitive value).
        denominator: ``"all"`` (every key but the anchor), ``"other_label"`` (keys of another
            label), ``"other_label_same_sensitive"`` (another label, same sensitive value), or
            ``"label_xor_sensitive"`` (keys sharing exactly one of the anchor's label and sensitive
            value: same label and another sensitive value, or another label and the same sensitive
            value; CnC's positives and negatives together).
        clamp: replace each log-ratio ``s_ip − lse(i)`` by ``min(0, s_ip − lse(i))``.
        group_norm: FSCL+ group normalisation: divide the positive sum by ``n(i)``, the number
            of positives sharing the anchor's sensitive value, and weight the anchor by
            ``(M/8)/(n(i) + 1)``; anchors with ``n(i) = 0`` are invalid.
    """

    positives: PositiveRule
    denominator: DenominatorRule
    clamp: bool = False
    group_norm: bool = False

    @property
    def needs_labels(self) -> bool:
        """Whether the term reads labels."""
        return self.positives != "instance" or self.denominator != "all"

    @property
    def needs_sensitive(self) -> bool:
        """Whether the term reads sensitive values."""
        return (
            self.positives == "label_other_sensitive"
            or self.denominator in ("other_label_same_sensitive", "label_xor_sensitive")
            or self.group_norm
        )


class TermSum(NamedTuple):
    """Sum of one term's per-anchor losses over the valid anchors of ``anchor_rows``.

    Attributes:
        loss_sum: 0-dim tensor (differentiable; 0 with zero gradient when no anchor is valid).
        n_valid: 0-dim int64 tensor, the number of valid anchors.
    """

    loss_sum: Tensor
    n_valid: Tensor


@dataclass(frozen=True)
class IdRanges:
    """Known ranges of the integer ids: each id of a kind lies in ``[0, n)``.

    A given range lets the engine index its group tables by the ids themselves, with tables of a
    size known in advance: no ``torch.unique`` and no host synchronisation. ``None`` means
    arbitrary integers, compacted with ``torch.unique``.

    Attributes:
        instances: number of images (``instance_ids`` in ``[0, instances)``).
        labels: number of classes (``labels`` in ``[0, labels)``).
        sensitive: number of sensitive values (``sensitive`` in ``[0, sensitive)``).
    """

    instances: int | None = None
    labels: int | None = None
    sensitive: int | None = None

    def __post_init__(self) -> None:
        for name in ("instances", "labels", "sensitive"):
            check_id_range(f"id_ranges.{name}", getattr(self, name))


def check_id_range(arg: str, value: object) -> int | None:
    """Return ``value`` if it is a valid id range (an integer >= 1) or None.

    Raises:
        CecoFairError: naming ``arg``, otherwise.
    """
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise CecoFairError(_ID_RANGE.format(arg=arg, value=value))
    return value


class _Groups(NamedTuple):
    """Group indices of the keys and their per-group counts (groups may be empty)."""

    instance: Tensor  # [M] image index of each key
    instance_count: Tensor  # [n_images]
    label: Tensor  # [M] label index (zeros when labels are not used)
    label_count: Tensor  # [n_labels]
    sensitive: Tensor  # [M] sensitive index (zeros without sensitive)
    sensitive_count: Tensor  # [n_sensitive]
    cell: Tensor  # [M] (sensitive, label) cell index: sensitive · n_labels + label
    cell_count: Tensor  # [G]
    cell_label: Tensor  # [G] label index of each cell
    cell_sensitive: Tensor  # [G] sensitive index of each cell (zeros without sensitive)


def infonce_terms(
    keys: Tensor,
    terms: Sequence[Term],
    *,
    temperature: float,
    instance_ids: Tensor,
    labels: Tensor | None = None,
    sensitive: Tensor | None = None,
    anchor_rows: slice | Tensor | None = None,
    block_size: int | None = None,
    id_ranges: IdRanges | None = None,
    validate: bool = True,
) -> tuple[TermSum, ...]:
    """Sums of per-anchor InfoNCE losses for several terms, from one pass over the similarities.

    Args:
        keys: ``[M, D]`` finite embeddings of any floating dtype and scale (L2-normalised
            here; float64 is computed in float64, every other dtype in float32).
        terms: the terms to evaluate; they share every similarity block.
        temperature: ``τ > 0``.
        instance_ids: ``[M]`` integer image id of each row (rows with the same id are views
            of one image).
        labels: ``[M]`` integer labels; required by every rule except ``instance``/``all``.
        sensitive: ``[M]`` integer sensitive (or bias) values; required by the rules that
            name them and by group normalisation.
        anchor_rows: rows of ``keys`` used as anchors (a slice, or a 1-D tensor of distinct
            row indices); ``None`` means every row.
        block_size: anchors per ``[block, M]`` similarity slice, or the side of the square
            tiles when every row is an anchor (default:
            :func:`ceco_fair.losses.problem.default_block_size` /
            :func:`~ceco_fair.losses.problem.default_tile_size`).
        id_ranges: the known ranges of the ids (see :class:`IdRanges`); None: all unknown.
        validate: check the values of ``anchor_rows`` and that ids lie in their given ranges.
            Each check reads values back to the host; a training loop whose ids come from a
            validated dataset turns them off.

    Returns:
        One :class:`TermSum` per term, in order; ``loss_sum`` has the compute dtype.

    Raises:
        CecoFairError: on a malformed argument (shape, dtype, missing ids, bad rule).
    """
    _check_terms(terms)
    _check_keys(keys)
    n_keys = keys.shape[0]
    instance_ids = _check_ids("instance_ids", instance_ids, n_keys, keys.device)
    needs_labels = any(t.needs_labels for t in terms)
    needs_sensitive = any(t.needs_sensitive for t in terms)
    for index, term in enumerate(terms):
        rule = f"{term.positives}/{term.denominator}"
        if term.needs_labels and labels is None:
            raise CecoFairError(_IDS_MISSING.format(name="labels", rule=rule, index=index))
        if term.needs_sensitive and sensitive is None:
            raise CecoFairError(_IDS_MISSING.format(name="sensitive", rule=rule, index=index))
    if not (isinstance(temperature, (int, float)) and 0 < temperature < float("inf")):
        raise CecoFairError(_TEMPERATURE.format(value=temperature))
    if block_size is not None and (not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1):
        raise CecoFairError(_BLOCK_SIZE.format(value=block_size))
    label_ids = _check_ids("labels", labels, n_keys, keys.device) if needs_labels else None
    sens_ids = _check_ids("sensitive", sensitive, n_keys, keys.device) if needs_sensitive else None
    ranges = id_ranges or IdRanges()
    if validate:
        for name, ids, n in (
            ("instance_ids", instance_ids, ranges.instances),
            ("labels", label_ids, ranges.labels),
            ("sensitive", sens_ids, ranges.sensitive),
        ):
            _check_range(name, ids, n)
    rows = _anchor_indices(anchor_rows, n_keys, keys.device, validate)
    anchors_are_keys = anchor_rows is None or (
        isinstance(anchor_rows, slice) and range(*anchor_rows.indices(n_keys)) == range(n_keys)
    )

    with _autocast_off(keys.device):
        compute_dtype = torch.float64 if keys.dtype == torch.float64 else torch.float32
        z = F.normalize(keys.to(compute_dtype), dim=1)
        groups = _group_ids(instance_ids, label_ids, sens_ids, ranges)
        inv_tau = 1.0 / float(temperature)
        lse, clamp_excess = _logsumexp_terms(z, terms, groups, rows, anchors_are_keys, inv_tau, block_size)
        results = []
        for index, term in enumerate(terms):
            pos_count, pos_dot = _positive_sums(z, term, groups, rows)
            den_count = _denominator_count(term.denominator, groups, rows)
            excess = clamp_excess.get(index)
            results.append(
                _term_sum(
                    term,
                    pos_count,
                    pos_dot * inv_tau,
                    den_count,
                    lse[term.denominator],
                    excess,
                    groups,
                    rows,
                    n_keys,
                )
            )
    return tuple(results)


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Autocast disabled on ``device`` (a no-op on device types without autocast, such as meta)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _check_terms(terms: Sequence[Term]) -> None:
    if len(terms) == 0:
        raise CecoFairError(_NO_TERMS)
    for index, term in enumerate(terms):
        if term.positives not in POSITIVE_RULES:
            raise CecoFairError(
                _TERM_RULE.format(index=index, field="positives", valid=POSITIVE_RULES, value=term.positives)
            )
        if term.denominator not in DENOMINATOR_RULES:
            raise CecoFairError(
                _TERM_RULE.format(
                    index=index,
                    field="denominator",
                    valid=DENOMINATOR_RULES,
                    value=term.denominator,
                )
            )
        if term.group_norm and term.positives != "label":
            raise CecoFairError(_GROUP_NORM_RULE.format(index=index, value=term.positives))


def _check_keys(keys: Tensor) -> None:
    if not isinstance(keys, Tensor) or keys.dim() != 2 or 0 in keys.shape:
        shape = tuple(keys.shape) if isinstance(keys, Tensor) else type(keys).__name__
        raise CecoFairError(_KEYS_SHAPE.format(shape=shape))
    if not keys.is_floating_point():
        raise CecoFairError(_KEYS_SHAPE.format(shape=f"{tuple(keys.shape)} of {keys.dtype}"))


def _check_ids(name: str, ids: Tensor | None, n_keys: int, device: torch.device) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dim() != 1 or ids.shape[0] != n_keys:
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise CecoFairError(_IDS_SHAPE.format(name=name, m=n_keys, shape=shape))
    if ids.is_floating_point() or ids.is_complex():
        raise CecoFairError(_IDS_DTYPE.format(name=name, dtype=ids.dtype))
    return ids.to(device=device, dtype=torch.int64)


def _check_range(name: str, ids: Tensor | None, n: int | None) -> None:
    if ids is None or n is None:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= n:
        raise CecoFairError(_IDS_OUT_OF_RANGE.format(name=name, n=n, low=low, high=high))


def _anchor_indices(anchor_rows: slice | Tensor | None, n_keys: int, device: torch.device, validate: bool) -> Tensor:
    all_rows = torch.arange(n_keys, device=device)
    if anchor_rows is None:
        return all_rows
    if isinstance(anchor_rows, slice):
        return all_rows[anchor_rows]
    if (
        isinstance(anchor_rows, Tensor)
        and anchor_rows.dim() == 1
        and not anchor_rows.is_floating_point()
        and anchor_rows.dtype != torch.bool
    ):
        rows = anchor_rows.to(device=device, dtype=torch.int64)
        if rows.numel() == 0 or not validate:
            return rows
        low, high = int(rows.min()), int(rows.max())
        if low >= 0 and high < n_keys and torch.unique(rows).numel() == rows.numel():
            return rows
        value = f"{rows.numel()} rows in [{low}, {high}]"
    elif isinstance(anchor_rows, Tensor):
        value = f"a tensor of shape {tuple(anchor_rows.shape)} and dtype {anchor_rows.dtype}"
    else:
        value = type(anchor_rows).__name__
    raise CecoFairError(_ANCHOR_ROWS.format(m=n_keys, value=value))


def _index_and_counts(ids: Tensor, size: int | None) -> tuple[Tensor, Tensor]:
    """Group index of each row and the row count of each group: ``([M], [n_groups])`` int64.

    With a known ``size`` the ids are the indices and the counts a scatter into ``size`` slots
    (empty groups count 0; no host synchronisation); otherwise the ids are compacted to
    ``0..n-1`` by ``torch.unique``.
    """
    if size is None:
        _, index, counts = torch.unique(ids, return_inverse=True, return_counts=True)
        return index, counts
    return ids, _counts(ids, size)


def _counts(index: Tensor, size: int) -> Tensor:
    """``[size]`` int64 number of rows per index value (``bincount`` would read the maximum back)."""
    return torch.zeros(size, dtype=torch.int64, device=index.device).scatter_add_(0, index, torch.ones_like(index))


def _group_ids(instance_ids: Tensor, labels: Tensor | None, sensitive: Tensor | None, ranges: IdRanges) -> _Groups:
    n_keys = instance_ids.numel()
    instance, instance_count = _index_and_counts(instance_ids, ranges.instances)
    zeros = torch.zeros_like(instance)
    label, label_count = _index_and_counts(labels, ranges.labels) if labels is not None else (zeros, _counts(zeros, 1))
    sens, sens_count = (
        _index_and_counts(sensitive, ranges.sensitive) if sensitive is not None else (zeros, _counts(zeros, 1))
    )
    n_labels, n_sensitive = label_count.numel(), sens_count.numel()
    code = sens * n_labels + label
    if n_labels * n_sensitive <= max(n_keys, CELL_GRID_MAX):
        # Every (sensitive, label) pair gets a cell, present in the batch or not: a fixed-size grid.
        cell, cell_code = code, torch.arange(n_labels * n_sensitive, device=code.device)
        cell_count = _counts(cell, n_labels * n_sensitive)
    else:
        # More pairs than keys (many labels and groups): only the pairs present get a cell.
        cell_code, cell, cell_count = torch.unique(code, return_inverse=True, return_counts=True)
    return _Groups(
        instance=instance,
        instance_count=instance_count,
        label=label,
        label_count=label_count,
        sensitive=sens,
        sensitive_count=sens_count,
        cell=cell,
        cell_count=cell_count,
        cell_label=cell_code % n_labels,
        cell_sensitive=cell_code // n_labels,
    )


def _denominator(rule: DenominatorRule, groups: _Groups) -> Denominator:
    """The cells a rule's denominator contrasts against."""
    if rule == "all":
        return Denominator()
    if rule == "other_label":
        return Denominator(differ=groups.cell_label)
    other_label = Denominator(differ=groups.cell_label, same=groups.cell_sensitive)
    if rule == "other_label_same_sensitive":
        return other_label
    return Denominator(differ=groups.cell_sensitive, same=groups.cell_label, union=other_label)


def _denominator_count(rule: DenominatorRule, groups: _Groups, rows: Tensor) -> Tensor:
    """``|D(i)|`` of each anchor: ``[A]`` int64 (exact counts, the anchor excluded)."""
    n_keys = groups.cell.numel()
    if rule == "all":
        return torch.full_like(rows, n_keys - 1)
    label_count = groups.label_count[groups.label[rows]]
    if rule == "other_label":
        return n_keys - label_count
    cell_count = groups.cell_count[groups.cell[rows]]
    other_label_same_sensitive = groups.sensitive_count[groups.sensitive[rows]] - cell_count
    if rule == "other_label_same_sensitive":
        return other_label_same_sensitive
    return (label_count - cell_count) + other_label_same_sensitive  # label_xor_sensitive


def _positive_match(rule: PositiveRule, groups: _Groups, rows: Tensor) -> PositiveMatch:
    """Positive identifiers of the keys and of the anchors (for clamped terms)."""
    if rule == "instance":
        return PositiveMatch(groups.instance, groups.instance[rows])
    if rule == "label":
        return PositiveMatch(groups.label, groups.label[rows])
    return PositiveMatch(groups.label, groups.label[rows], groups.sensitive, groups.sensitive[rows])


def _logsumexp_terms(
    z: Tensor,
    terms: Sequence[Term],
    groups: _Groups,
    rows: Tensor,
    anchors_are_keys: bool,
    inv_tau: float,
    block_size: int | None,
) -> tuple[dict[DenominatorRule, Tensor], dict[int, Tensor]]:
    """Per-anchor ``lse`` of every denominator rule used, and ``R`` of every clamped term."""
    rules = list(dict.fromkeys(term.denominator for term in terms))
    clamped_index = [i for i, term in enumerate(terms) if term.clamp]
    problem = BlockProblem(
        anchor_pos=rows,
        anchors_are_keys=anchors_are_keys,
        anchor_cell=groups.cell[rows],
        key_cell=groups.cell,
        n_cells=groups.cell_count.numel(),
        denominators=tuple(_denominator(rule, groups) for rule in rules),
        clamped=tuple(
            ClampedTerm(rules.index(terms[i].denominator), _positive_match(terms[i].positives, groups, rows))
            for i in clamped_index
        ),
        inv_temperature=inv_tau,
        block_size=block_size,
    )
    logger.debug(
        "masked log-sum-exp: %d anchors x %d keys, %d cells, block %s, rules %s",
        rows.numel(),
        z.shape[0],
        problem.n_cells,
        block_size,
        rules,
    )
    out = masked_logsumexp(z, problem)
    lse = {rule: out[i] for i, rule in enumerate(rules)}
    excess = {term_index: out[len(rules) + c] for c, term_index in enumerate(clamped_index)}
    return lse, excess


def _positive_sums(z: Tensor, term: Term, groups: _Groups, rows: Tensor) -> tuple[Tensor, Tensor]:
    """``|P(i)|`` (``[A]`` int64) and ``Σ_{p ∈ P(i)} z_i·z_p`` (``[A]``) from group sums."""
    anchors = z[rows]
    if term.positives == "instance":
        sums = _group_sums(z, groups.instance, groups.instance_count.numel())
        pos_vec = sums[groups.instance[rows]] - anchors
        count = groups.instance_count[groups.instance[rows]] - 1
    elif term.positives == "label":
        sums = _group_sums(z, groups.label, groups.label_count.numel())
        pos_vec = sums[groups.label[rows]] - anchors
        count = groups.label_count[groups.label[rows]] - 1
    else:
        label_sums = _group_sums(z, groups.label, groups.label_count.numel())
        cell_sums = _group_sums(z, groups.cell, groups.cell_count.numel())
        pos_vec = label_sums[groups.label[rows]] - cell_sums[groups.cell[rows]]
        count = groups.label_count[groups.label[rows]] - groups.cell_count[groups.cell[rows]]
    return count, (anchors * pos_vec).sum(1)


def _group_sums(z: Tensor, index: Tensor, n_groups: int) -> Tensor:
    """``[n_groups, D]`` sum of the rows of each group."""
    return z.new_zeros(n_groups, z.shape[1]).index_add(0, index, z)


def _term_sum(
    term: Term,
    pos_count: Tensor,
    pos_logit_sum: Tensor,
    den_count: Tensor,
    lse: Tensor,
    clamp_excess: Tensor | None,
    groups: _Groups,
    rows: Tensor,
    n_keys: int,
) -> TermSum:
    """Combine positive sums and log-sum-exps into the sum of ``ℓ(i)`` over valid anchors.

    ``ℓ(i) = (|P(i)|·lse(i) − Σ_p s_ip + R(i)) / norm(i)`` with ``norm(i) = |P(i)|`` (or the
    number of positives sharing the anchor's sensitive value with group normalisation), where
    ``R(i) = Σ_p max(0, s_ip − lse(i))`` for clamped terms and 0 otherwise.
    """
    valid = (pos_count > 0) & (den_count > 0)
    weight: Tensor | None = None
    if term.group_norm:
        same_sensitive = groups.cell_count[groups.cell[rows]] - 1
        valid &= same_sensitive > 0
        norm = same_sensitive
        c = n_keys / FSCL_GROUP_NORM_DIVISOR
        weight = c / (same_sensitive + 1).to(lse.dtype)
    else:
        norm = pos_count
    numerator = pos_count.to(lse.dtype) * lse - pos_logit_sum
    if clamp_excess is not None:
        numerator = numerator + clamp_excess
    per_anchor = numerator / torch.where(valid, norm, 1).to(lse.dtype)
    if weight is not None:
        per_anchor = per_anchor * weight
    loss_sum = torch.where(valid, per_anchor, 0.0).sum()
    return TermSum(loss_sum=loss_sum, n_valid=valid.sum())
