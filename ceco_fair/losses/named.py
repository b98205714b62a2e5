"""The named contrastive losses: thin modules over :func:`ceco_fair.losses.engine.infonce_terms`.

Every module is called as ``loss(features, labels=None, sensitive=None)`` with ``features`` of
shape ``[N, V, D]`` (N images, V views, any scale: rows are L2-normalised inside) and returns a
0-dim float32 tensor (float64 for float64 features). Rows are flattened *sample-major*: row
``n·V + v`` is view ``v`` of image ``n``, and image ``n`` is the instance of its views.

The loss is ``(τ/τ_base) · Σ_t λ_t · L_t`` where each term ``L_t`` is the mean of its per-anchor
losses over its own valid anchors (a differentiable zero when none is valid); see
:mod:`ceco_fair.losses.engine` for the per-anchor definition.

Pass ``n_classes`` / ``n_groups`` when labels / sensitive values are known to lie in
``[0, n_classes)`` / ``[0, n_groups)`` (as a dataset's are) and set ``check_values = False`` in a
training loop: the loss then reads nothing back to the host, so a GPU step never waits on it.

Distributed data parallelism: gather the features (and labels, sensitive values) of all
processes, call :meth:`ContrastiveLoss.partial_sums` with ``anchor_rows`` set to this
process's rows, all-reduce every ``n_valid``, and pass the sums with the global counts to
:meth:`ContrastiveLoss.combine`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from ceco_fair.errors import CecoFairError
from ceco_fair.losses.engine import IdRanges, Term, TermSum, check_id_range, infonce_terms

_FEATURES_TYPE = "features must be a floating-point tensor of shape [N, V, D], got {value}"
_FEATURES_SHAPE = "features must have shape [N, V, D] with N, V, D >= 1, got shape {shape}"
_FEATURES_VIEWS = "features has V={views} views but {name} needs V >= {min_views}, got shape {shape}"
_FEATURES_FINITE = "features must be finite for {name}, found NaN or inf"
_IDS_MISSING = "{name} needs {arg}: an integer tensor of shape [N] = [{n}], got None"
_IDS_SHAPE = "{arg} must be an integer tensor of shape [N] = [{n}] matching features, got {value}"
_POSITIVE = "{arg} must be a finite number > 0, got {value!r}"
_NON_NEGATIVE = "{arg} must be a finite number >= 0, got {value!r}"
_FLAG = "{arg} must be True or False, got {value!r}"
_BLOCK_SIZE = "block_size must be an integer >= 1 or None, got {value!r}"


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"shape {tuple(value.shape)} of {value.dtype}"
    return type(value).__name__


def _finite_number(arg: str, value: object, *, allow_zero: bool) -> float:
    template = _NON_NEGATIVE if allow_zero else _POSITIVE
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CecoFairError(template.format(arg=arg, value=value))
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise CecoFairError(template.format(arg=arg, value=value))
    return number


def _flag(arg: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise CecoFairError(_FLAG.format(arg=arg, value=value))
    return value


class ContrastiveLoss(nn.Module, ABC):
    """Base class: validates inputs, flattens views, and combines the engine's term sums.

    Subclasses set the class attributes and :meth:`weighted_terms`.

    Attributes:
        needs_labels: whether ``labels`` is required.
        needs_sensitive: whether ``sensitive`` is required.
        min_views: the smallest number of views V accepted.
        default_temperature: τ when none is given.
        default_base_temperature: τ_base when none is given.
        default_ce_weight: weight of the auxiliary cross-entropy head a method trains beside this loss
            when the protocol gives no ``ce_weight`` (0: none).
    """

    name: ClassVar[str] = "contrastive"
    needs_labels: ClassVar[bool] = True
    needs_sensitive: ClassVar[bool] = False
    min_views: ClassVar[int] = 1
    default_temperature: ClassVar[float] = 0.1
    default_base_temperature: ClassVar[float] = 0.07
    default_ce_weight: ClassVar[float] = 0.0

    def __init__(
        self,
        *,
        temperature: float | None = None,
        base_temperature: float | None = None,
        block_size: int | None = None,
    ) -> None:
        """Validate and store the shared hyper-parameters.

        Args:
            temperature: τ > 0 (default: the class's ``default_temperature``).
            base_temperature: τ_base > 0; the loss is scaled by τ/τ_base.
            block_size: anchors per similarity block, or None for the engine's default.

        Raises:
            CecoFairError: if a value is out of range.
        """
        super().__init__()
        self.temperature = _finite_number(
            "temperature",
            self.default_temperature if temperature is None else temperature,
            allow_zero=False,
        )
        self.base_temperature = _finite_number(
            "base_temperature",
            self.default_base_temperature if base_temperature is None else base_temperature,
            allow_zero=False,
        )
        if block_size is not None and (
            not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1
        ):
            raise CecoFairError(_BLOCK_SIZE.format(value=block_size))
        self.block_size = block_size
        self.check_values = True
        """Check the values of the inputs: finite features, labels and sensitive values within
        ``n_classes`` / ``n_groups``, distinct anchor rows (a CecoFairError otherwise). Each check
        reads values back to the host, a synchronisation per step on a GPU; a training loop whose
        batches come from a validated dataset turns them off (a non-finite value then means
        divergence, which the loop detects on the loss)."""

    @abstractmethod
    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """The engine terms of this loss with their weights λ_t."""

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return f"temperature={self.temperature}, base_temperature={self.base_temperature}"

    def forward(
        self,
        features: Tensor,
        labels: Tensor | None = None,
        sensitive: Tensor | None = None,
        *,
        n_classes: int | None = None,
        n_groups: int | None = None,
    ) -> Tensor:
        """Compute the loss of one batch.

        Args:
            features: ``[N, V, D]`` embeddings (any float dtype, any scale).
            labels: ``[N]`` integer labels (ignored when the loss needs none).
            sensitive: ``[N]`` integer sensitive / bias values (ignored when not needed).
            n_classes: labels lie in ``[0, n_classes)``; None: any integers (compacted with
                ``torch.unique``, a host synchronisation on accelerators).
            n_groups: sensitive values lie in ``[0, n_groups)``; None: any integers.

        Returns:
            0-dim float32 tensor (float64 for float64 features).

        Raises:
            CecoFairError: on a wrong shape, missing labels/sensitive, too few views, NaN/inf.
        """
        return self.combine(self.partial_sums(features, labels, sensitive, n_classes=n_classes, n_groups=n_groups))

    def partial_sums(
        self,
        features: Tensor,
        labels: Tensor | None = None,
        sensitive: Tensor | None = None,
        *,
        instance_ids: Tensor | None = None,
        anchor_rows: slice | Tensor | None = None,
        n_classes: int | None = None,
        n_groups: int | None = None,
    ) -> tuple[TermSum, ...]:
        """Per-term loss sums and valid-anchor counts, optionally for a subset of anchors.

        Args:
            features: ``[N, V, D]`` embeddings of the whole (possibly gathered) batch.
            labels: ``[N]`` integer labels.
            sensitive: ``[N]`` integer sensitive / bias values.
            instance_ids: ``[N]`` integer image ids (default ``arange(N)``).
            anchor_rows: rows of the sample-major flattened ``[N·V, D]`` features to use as
                anchors (a slice or 1-D index tensor); None means all rows.
            n_classes: labels lie in ``[0, n_classes)`` (see :meth:`forward`).
            n_groups: sensitive values lie in ``[0, n_groups)``.

        Returns:
            One :class:`TermSum` per term of :meth:`weighted_terms`.

        Raises:
            CecoFairError: on malformed inputs.
        """
        n, v, d = self._check_features(features)
        row_labels = self._row_ids("labels", labels, n, v, features, self.needs_labels)
        row_sensitive = self._row_ids("sensitive", sensitive, n, v, features, self.needs_sensitive)
        n_instances = None
        if instance_ids is None:
            instance_ids, n_instances = torch.arange(n, device=features.device), n
        row_instances = self._row_ids("instance_ids", instance_ids, n, v, features, True)
        assert row_instances is not None
        return infonce_terms(
            features.reshape(n * v, d),
            [term for term, _ in self.weighted_terms()],
            temperature=self.temperature,
            instance_ids=row_instances,
            labels=row_labels,
            sensitive=row_sensitive,
            anchor_rows=anchor_rows,
            block_size=self.block_size,
            id_ranges=IdRanges(
                instances=n_instances,
                labels=check_id_range("n_classes", n_classes),
                sensitive=check_id_range("n_groups", n_groups),
            ),
            validate=self.check_values,
        )

    def combine(self, sums: Sequence[TermSum]) -> Tensor:
        """``(τ/τ_base) · Σ_t λ_t · loss_sum_t / max(n_valid_t, 1)``.

        Args:
            sums: one :class:`TermSum` per term (with global counts when distributed).

        Returns:
            0-dim tensor; a differentiable zero for terms without valid anchors.
        """
        total: Tensor | None = None
        for (_, weight), part in zip(self.weighted_terms(), sums, strict=True):
            mean = part.loss_sum / part.n_valid.clamp(min=1).to(part.loss_sum.dtype)
            total = weight * mean if total is None else total + weight * mean
        assert total is not None
        return total * (self.temperature / self.base_temperature)

    def _check_features(self, features: Tensor) -> tuple[int, int, int]:
        if not isinstance(features, Tensor) or not features.is_floating_point():
            raise CecoFairError(_FEATURES_TYPE.format(value=_describe(features)))
        shape = tuple(features.shape)
        if features.dim() != 3 or 0 in shape:
            raise CecoFairError(_FEATURES_SHAPE.format(shape=shape))
        if shape[1] < self.min_views:
            raise CecoFairError(
                _FEATURES_VIEWS.format(views=shape[1], name=self.name, min_views=self.min_views, shape=shape)
            )
        if self.check_values and not bool(torch.isfinite(features).all()):
            raise CecoFairError(_FEATURES_FINITE.format(name=self.name))
        return shape[0], shape[1], shape[2]

    def _row_ids(self, arg: str, ids: Tensor | None, n: int, v: int, features: Tensor, required: bool) -> Tensor | None:
        """Validate ``[N]`` ids and repeat them per view: ``[N·V]`` int64 (None if unused)."""
        if not required:
            return None
        if ids is None:
            raise CecoFairError(_IDS_MISSING.format(name=self.name, arg=arg, n=n))
        ok = isinstance(ids, Tensor) and ids.shape == (n,) and not ids.is_floating_point() and not ids.is_complex()
        if not ok:
            raise CecoFairError(_IDS_SHAPE.format(arg=arg, n=n, value=_describe(ids)))
        return ids.to(device=features.device, dtype=torch.int64).repeat_interleave(v)


class SimCLRLoss(ContrastiveLoss):
    """SimCLR / NT-Xent: positives are the other views of the anchor's image; D = all k ≠ i.

    Labels and sensitive values are ignored. Needs V >= 2. Defaults τ = 0.1, τ_base = 0.07.

    Example:
        >>> loss = SimCLRLoss()(torch.randn(8, 2, 16))  # features [N=8, V=2, D=16]
    """

    name = "simclr"
    needs_labels = False
    min_views = 2

    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """One term: instance positives over all other keys."""
        return ((Term("instance", "all"), 1.0),)


class SupConLoss(ContrastiveLoss):
    """Supervised contrastive loss (Khosla et al. 2020, L_out): same-label positives, D = all.

    Defaults τ = 0.1, τ_base = 0.07. Anchors whose label has no other row are skipped.

    Example:
        >>> loss = SupConLoss()(torch.randn(8, 2, 16), torch.randint(0, 3, (8,)))
    """

    name = "supcon"

    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """One term: label positives over all other keys."""
        return ((Term("label", "all"), 1.0),)


class ConTeXLoss(ContrastiveLoss):
    """Context-enriched contrastive loss (Deng & Yang, IEEE TMM 2025).

    ``L = (τ/τ_base)·(λ_a·L_a + λ_b·L_b)``:

    * ``L_a``: positives = same label (the anchor's own other views included), denominator =
      keys of a different label only; with ``clamp=True`` each log-ratio
      ``s_ip − log Σ_{D_a} exp(s_ik)`` is replaced by ``min(0, ·)`` (the authors' variant).
    * ``L_b``: positives = other views of the same image, denominator = all k ≠ i (NT-Xent).

    ``L_a`` and ``L_b`` are each the mean over their *own* valid anchors: an anchor whose batch
    holds no other label has an empty ``L_a`` denominator and contributes to ``L_b`` only; if
    no anchor is valid for ``L_a`` (one label in the batch), ``L_a`` is 0 and the loss is
    ``(τ/τ_base)·λ_b·L_b``. Needs V >= 2. Defaults τ = 0.1, τ_base = 0.07, λ_a = λ_b = 0.5.

    Example:
        >>> loss = ConTeXLoss(temperature=0.1)(torch.randn(8, 2, 16), torch.randint(0, 3, (8,)))
    """

    name = "contex"
    min_views = 2

    def __init__(
        self,
        *,
        temperature: float | None = None,
        base_temperature: float | None = None,
        label_weight: float = 0.5,
        self_weight: float = 0.5,
        clamp: bool = False,
        block_size: int | None = None,
    ) -> None:
        """Store ConTeX's weights and clamp flag.

        Args:
            temperature: τ > 0 (default 0.1).
            base_temperature: τ_base > 0 (default 0.07).
            label_weight: λ_a >= 0, weight of the label (context) part.
            self_weight: λ_b >= 0, weight of the self (instance) part.
            clamp: clamp each ``L_a`` log-ratio at 0.
            block_size: anchors per similarity block (None: engine default).

        Raises:
            CecoFairError: if a value is out of range.
        """
        super().__init__(temperature=temperature, base_temperature=base_temperature, block_size=block_size)
        self.label_weight = _finite_number("label_weight", label_weight, allow_zero=True)
        self.self_weight = _finite_number("self_weight", self_weight, allow_zero=True)
        self.clamp = _flag("clamp", clamp)

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return (
            f"{super().extra_repr()}, label_weight={self.label_weight}, "
            f"self_weight={self.self_weight}, clamp={self.clamp}"
        )

    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """``L_a`` (label positives, other-label denominator) and ``L_b`` (instance, all)."""
        return (
            (Term("label", "other_label", clamp=self.clamp), self.label_weight),
            (Term("instance", "all"), self.self_weight),
        )


class FSCLLoss(ContrastiveLoss):
    """Fair supervised contrastive loss (Park et al. CVPR 2022).

    Positives = same label; denominator = a different label *and* the anchor's sensitive value.
    Anchors with an empty denominator are skipped (not counted). With ``group_norm=True``
    (FSCL+), the positive sum is divided by ``n(i)``, the number of positives sharing the
    anchor's sensitive value, and the anchor is weighted by ``C/(n(i) + 1)`` with ``C = M/8``
    (M = N·V rows of the whole batch); anchors with ``n(i) = 0`` are skipped.
    Defaults τ = 0.1, τ_base = 0.07.

    Example:
        >>> x, y, s = torch.randn(8, 2, 16), torch.randint(0, 2, (8,)), torch.randint(0, 2, (8,))
        >>> loss = FSCLLoss()(x, y, s)
    """

    name = "fscl"
    needs_sensitive = True

    def __init__(
        self,
        *,
        temperature: float | None = None,
        base_temperature: float | None = None,
        group_norm: bool = False,
        block_size: int | None = None,
    ) -> None:
        """Store FSCL's group-normalisation flag.

        Args:
            temperature: τ > 0 (default 0.1).
            base_temperature: τ_base > 0 (default 0.07).
            group_norm: FSCL+ group normalisation.
            block_size: anchors per similarity block (None: engine default).

        Raises:
            CecoFairError: if a value is out of range.
        """
        super().__init__(temperature=temperature, base_temperature=base_temperature, block_size=block_size)
        self.group_norm = _flag("group_norm", group_norm)

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return f"{super().extra_repr()}, group_norm={self.group_norm}"

    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """One term: label positives, denominator of other labels sharing the sensitive value."""
        return ((Term("label", "other_label_same_sensitive", group_norm=self.group_norm), 1.0),)


class BiasConLoss(ContrastiveLoss):
    """Bias-contrastive loss (Hong & Yang NeurIPS 2021).

    Positives = same label and a different bias value (``sensitive``); denominator = all k ≠ i.
    Defaults τ = τ_base = 0.07 (no scaling); trained beside 0.01 · cross-entropy of a linear head, as
    in the paper (``default_ce_weight``).

    Example:
        >>> x, y, b = torch.randn(8, 2, 16), torch.randint(0, 2, (8,)), torch.randint(0, 2, (8,))
        >>> loss = BiasConLoss()(x, y, b)
    """

    name = "biascon"
    needs_sensitive = True
    default_temperature = 0.07
    default_base_temperature = 0.07
    default_ce_weight = 0.01

    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """One term: same-label other-bias positives over all other keys."""
        return ((Term("label_other_sensitive", "all"), 1.0),)


class CnCLoss(ContrastiveLoss):
    """Correct-n-Contrast's contrastive term (Zhang et al. ICML 2022), pseudo-groups as ``sensitive``.

    ``sensitive`` holds each sample's pseudo-group: the class a first-stage ERM model predicts for
    it. For an anchor ``i`` of class ``y_i`` and prediction ``ŷ_i``:

    * positives ``P(i) = {p : y_p = y_i, ŷ_p ≠ ŷ_i}`` (same class, predicted otherwise);
    * negatives ``N(i) = {n : y_n ≠ y_i, ŷ_n = ŷ_i}`` (another class, predicted alike);
    * denominator ``D(i) = P(i) ∪ N(i)``::

        ℓ(i) = −(1/|P(i)|) Σ_{p ∈ P(i)} [ s_ip − log Σ_{k ∈ P(i) ∪ N(i)} exp(s_ik) ]

    The positives are in the denominator, in SupCon's form, as in the paper's equation and its
    authors' code (``SupervisedContrastiveLoss`` of HazyResearch/correct-n-contrast without
    ``single_pos``: ``log exp_pos − log(Σ exp_neg + Σ exp_pos)``, averaged over the positives);
    keys of neither set (same class and prediction, or another class and prediction) take no
    part. Anchors without a positive are skipped (not counted); an anchor with positives but no
    negative keeps ``D(i) = P(i)``. Default τ = 0.05 (the authors'); τ_base defaults to τ (no scaling,
    as in the paper).

    Not a pretraining loss of its own (not in :data:`~ceco_fair.losses.LOSSES`): the pseudo-groups
    come from a first-stage model, so it is the contrastive part of the ``cnc`` method
    (:class:`ceco_fair.training.staged.CorrectNContrast`).

    Example:
        >>> x, y, y_hat = torch.randn(8, 1, 16), torch.randint(0, 2, (8,)), torch.randint(0, 2, (8,))
        >>> loss = CnCLoss()(x, y, y_hat)
    """

    name = "cnc"
    needs_sensitive = True
    default_temperature = 0.05
    default_base_temperature = 0.05

    def __init__(
        self,
        *,
        temperature: float | None = None,
        base_temperature: float | None = None,
        block_size: int | None = None,
    ) -> None:
        """Store τ, with τ_base = τ unless given.

        Args:
            temperature: τ > 0 (default 0.05).
            base_temperature: τ_base > 0 (default: τ, the loss unscaled).
            block_size: anchors per similarity block (None: engine default).

        Raises:
            CecoFairError: if a value is out of range.
        """
        base = temperature if base_temperature is None else base_temperature
        super().__init__(temperature=temperature, base_temperature=base, block_size=block_size)

    def weighted_terms(self) -> tuple[tuple[Term, float], ...]:
        """One term: same-label other-prediction positives over positives and same-prediction negatives."""
        return ((Term("label_other_sensitive", "label_xor_sensitive"), 1.0),)
