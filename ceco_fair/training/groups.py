"""Subgroup-robustness baselines that train with one stage: group DRO, loss reweighting, group-balanced resampling, LfF.

Each method trains the encoder and a linear head with cross-entropy, like ``ce``; what differs is
how the samples of a batch are weighted or drawn. A (target, sensitive) *group* (or cell) of a
sample is ``g = target · n_groups + sensitive``; ``G = n_classes · n_groups`` groups in all, ``K``
of them non-empty in the training set of ``n`` samples, ``n_g`` samples in group ``g``.

* group DRO (:class:`GroupDRO`, Sagawa et al. 2020): per batch, ``L_g`` = mean cross-entropy of the batch's samples
  of group ``g`` (0 for a group absent from the batch), ``q_g ← q_g · exp(η · L_g)``, ``q ← q / Σ q``,
  loss ``Σ_g q_g · L_g``. ``q`` starts uniform over the non-empty groups.
* reweighting (:class:`Reweight`): loss ``(1/B) Σ_i w_i · CE_i`` with ``w_i = n / (K · n_{g(i)})`` (mean weight 1
  over the training set; every group weighs the same in expectation).
* resampling (:class:`Resample`): each epoch draws ``n`` samples with replacement, sample ``i`` with probability
  ``1 / (K · n_{g(i)})`` (every non-empty group equally likely); plain cross-entropy.
* LfF (:class:`LfF`, Nam et al. 2020): a biased model trained with the generalised cross-entropy
  ``GCE = (1 − p_y^q) / q`` and the debiased model with ``W_i · CE_i``, ``W_i = ℓ_b(i) / (ℓ_b(i) + ℓ_d(i))``
  where ``ℓ_b``, ``ℓ_d`` are per-sample exponential moving averages (factor ``ema``) of the two models'
  cross-entropies (the first value of a sample is taken as it is). Loss: batch mean of GCE plus batch
  mean of ``W · CE``. Uses no group labels.

The two-stage baselines (JTT, CnC) are in :mod:`ceco_fair.training.staged`. Under data parallelism
every process holds the same state: group DRO sums the group losses and counts of all processes
before updating ``q``, LfF gathers every process's indices and losses before updating the averages,
and the sampling orders come from generators every process seeds alike. The state (``q``, the LfF
averages) goes into the checkpoint.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any, Final, Self

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ceco_fair.errors import CecoFairError
from ceco_fair.training.distributed import DistributedContext
from ceco_fair.training.method import Method, ModelParts, OptionError, Outputs

logger = logging.getLogger(__name__)

LFF_EPSILON: Final = 1e-8
"""Added to the denominator of LfF's relative difficulty (as in the authors' code)."""


def group_ids(targets: torch.Tensor, sensitive: torch.Tensor, n_groups: int) -> torch.Tensor:
    """The (target, sensitive) cell of each sample, ``target · n_groups + sensitive`` (int64 ``[n]``)."""
    return targets.long() * n_groups + sensitive.long()


def cell_weights(
    targets: torch.Tensor, sensitive: torch.Tensor, n_classes: int, n_groups: int
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Per-sample weights that give every non-empty (target, sensitive) cell the same total weight.

    Args:
        targets: ``[n]`` classes in ``[0, n_classes)``.
        sensitive: ``[n]`` groups in ``[0, n_groups)``.
        n_classes: number of classes.
        n_groups: number of sensitive groups.

    Returns:
        Weights ``[n]`` (float64) ``w_i = n / (K · n_{cell(i)})`` with ``K`` non-empty cells (mean 1),
        and the empty cells as ``(target, sensitive)`` pairs.
    """
    weights, counts = balancing_weights(group_ids(targets, sensitive, n_groups), n_classes * n_groups)
    empty = [(int(c) // n_groups, int(c) % n_groups) for c in torch.nonzero(counts == 0).flatten()]
    return weights, empty


def balancing_weights(cells: torch.Tensor, n_cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``w_i = n / (K · n_{cell(i)})`` (float64) of cell ids ``[n]`` in ``[0, n_cells)``, and the counts."""
    counts = torch.bincount(cells, minlength=n_cells).double()
    return len(cells) / (int((counts > 0).sum()) * counts[cells]), counts


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over the processes of a running process group (the tensor itself otherwise)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's ``tensor [m, ...]`` concatenated along dim 0 (the tensor itself without a group)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def world_size() -> int:
    """Number of processes of the running process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def generalized_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, q: float) -> torch.Tensor:
    """Per-sample GCE ``(1 − p_y^q) / q`` of logits ``[B, C]`` (Zhang & Sabuncu 2018): ``[B]``."""
    probability = F.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    return (1 - probability.clamp_min(1e-12) ** q) / q


def per_sample_cross_entropy(
    outputs: tuple[torch.Tensor | None, torch.Tensor | None], targets: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy ``[B]`` of the model's logits (the second of its ``(extra, logits [B, C])`` outputs)."""
    logits = outputs[1]
    assert logits is not None
    return F.cross_entropy(logits.float(), targets, reduction="none")


class SubgroupMethod(Method):
    """A subgroup baseline: cross-entropy on the encoder and a linear head, with the training split's labels.

    :meth:`bind` keeps each training sample's (target, sensitive) cell; subclasses change the loss
    (:meth:`batch_loss`, from the model's outputs), the order, the stages or the end of an epoch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.n_classes = self.n_groups = 0
        self.device = torch.device("cpu")
        self.groups = torch.zeros(0, dtype=torch.int64)

    def start(self, dataset: Any, model: nn.Module, device: torch.device, context: DistributedContext) -> None:
        """Bind to the training split's labels (see :meth:`bind`).

        Raises:
            CecoFairError: the dataset lacks labels, or a group-label method meets a single sensitive value.
        """
        try:
            targets = torch.as_tensor(getattr(dataset, "targets")).long().reshape(-1)  # noqa: B009
            sensitive = torch.as_tensor(getattr(dataset, "sensitive")).long().reshape(-1)  # noqa: B009
            n_classes = int(getattr(dataset, "n_classes"))  # noqa: B009
            n_groups = int(getattr(dataset, "n_groups"))  # noqa: B009
        except AttributeError as error:
            raise CecoFairError(
                f"method {self.name}: the training split lacks {error.name} (a FairnessDataset member)"
            ) from None
        self.check_labels(sensitive, "methods")
        self.bind(targets, sensitive, n_classes, n_groups, device, model)

    def bind(
        self,
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        n_classes: int,
        n_groups: int,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> Self:
        """Bind to a training split's labels; returns the method itself.

        Args:
            targets: the training split's classes ``[n]``.
            sensitive: the training split's sensitive values ``[n]``.
            n_classes: number of classes.
            n_groups: number of sensitive groups.
            device: where the training runs.
            model: the model before training (a method that restarts keeps its weights).
        """
        self.n = len(targets)
        self.n_classes, self.n_groups = n_classes, n_groups
        self.device = device
        self.groups = group_ids(targets, sensitive, n_groups).to(device)
        self.on_bind(model)
        return self

    def on_bind(self, model: nn.Module | None) -> None:
        """A method's own state once :meth:`bind` has stored the labels; ``model`` is the model before training."""

    def loss(
        self,
        model: nn.Module,
        views: list[torch.Tensor],
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`batch_loss` of the model's outputs on the first view."""
        return self.batch_loss(model(views[0]), targets, index)

    def batch_loss(self, outputs: Outputs, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The batch loss from the model's ``(extra, logits [B, C])``; ``index [B]`` are the samples' rows."""
        logits = outputs[1]
        assert logits is not None
        return F.cross_entropy(logits.float(), targets)


class GroupDRO(SubgroupMethod):
    """Online group DRO: the batch loss is the ``q``-weighted mean of the group losses (module docstring).

    Args:
        eta: the step size ``η > 0`` of ``q``.
    """

    name = "groupdro"
    group_labels = True

    def __init__(self, eta: float = 0.01) -> None:
        super().__init__()
        if not eta > 0:
            raise OptionError(f"eta: expected a positive step size, got {eta}")
        self.eta = float(eta)
        self.q = torch.zeros(0, dtype=torch.float64)

    def on_bind(self, model: nn.Module | None) -> None:
        """Bind to the labels; ``q`` starts uniform over the non-empty groups."""
        super().on_bind(model)
        n_cells = self.n_classes * self.n_groups
        present = (torch.bincount(self.groups, minlength=n_cells) > 0).double()
        self.q = present / present.sum()

    def batch_loss(self, outputs: Outputs, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """GroupDRO's batch loss (see the module docstring)."""
        per_sample = per_sample_cross_entropy(outputs, targets)
        cells = self.groups[index.to(self.device)]
        n_cells = self.q.numel()
        sums = torch.zeros(n_cells, device=per_sample.device).index_add(0, cells, per_sample)
        counts = torch.zeros(n_cells, dtype=torch.float64, device=cells.device).index_add_(
            0, cells, torch.ones_like(cells, dtype=torch.float64)
        )  # a fixed size, unlike bincount's: no read-back to the host
        global_sums = all_reduce_sum(sums.detach().double())
        global_counts = all_reduce_sum(counts)
        group_loss = global_sums / global_counts.clamp_min(1)
        q = self.q.to(per_sample.device) * torch.exp(self.eta * group_loss)
        self.q = q / q.sum()
        weights = (self.q / global_counts.clamp_min(1)).to(per_sample.dtype)
        return (weights * sums).sum() * world_size()

    def state_dict(self) -> dict[str, Any]:
        """GroupDRO's state for the checkpoint."""
        return {"q": self.q.cpu()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.q = state["q"].to(self.device, torch.float64)


class Reweight(SubgroupMethod):
    """Cross-entropy weighted by ``n / (K · n_g)`` per sample (module docstring)."""

    name = "reweight"
    group_labels = True

    def on_bind(self, model: nn.Module | None) -> None:
        """Bind to the labels and weigh each sample."""
        super().on_bind(model)
        self.weights = balancing_weights(self.groups, self.n_classes * self.n_groups)[0].float()

    def batch_loss(self, outputs: Outputs, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Reweight's batch loss (see the module docstring)."""
        per_sample = per_sample_cross_entropy(outputs, targets)
        return (self.weights[index.to(self.device)] * per_sample).mean()


class Resample(SubgroupMethod):
    """Group-balanced sampling with replacement, ``n`` draws per epoch (module docstring)."""

    name = "resample"
    group_labels = True

    def probabilities(self) -> torch.Tensor:
        """Each sample's probability ``1 / (K · n_{g(i)})`` ``[n]`` (float64, CPU)."""
        groups = self.groups.cpu()
        counts = torch.bincount(groups).double()
        return 1.0 / (int((counts > 0).sum()) * counts[groups])

    def order(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """Resample's sample order for the epoch ``[n]``."""
        return torch.multinomial(self.probabilities(), self.n, replacement=True, generator=generator)


class LfF(SubgroupMethod):
    """Learning from failure: a GCE-trained biased model steers the debiased model's sample weights.

    Args:
        q: the GCE exponent, in ``(0, 1]``.
        ema: the factor of the per-sample moving averages, in ``[0, 1)``.
    """

    name = "lff"

    def __init__(self, q: float = 0.7, ema: float = 0.7) -> None:
        super().__init__()
        if not 0 < q <= 1:
            raise OptionError(f"q: expected a value in (0, 1], got {q}")
        if not 0 <= ema < 1:
            raise OptionError(f"ema: expected a value in [0, 1), got {ema}")
        self.q, self.ema = float(q), float(ema)

    def model_parts(self, encoder: nn.Module, feature_dim: int, n_classes: int, projection_dim: int) -> ModelParts:
        """The classifier, then the biased model (:func:`biased_model`)."""
        classifier = nn.Linear(feature_dim, n_classes)
        return ModelParts(classifier=classifier, extra=biased_model(encoder, feature_dim, n_classes))

    def on_bind(self, model: nn.Module | None) -> None:
        """Bind to the labels; the averages start at zero, no sample seen."""
        super().on_bind(model)
        self.ema_biased = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.ema_debiased = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.seen = torch.zeros(self.n, dtype=torch.bool, device=self.device)

    def update_averages(self, index: torch.Tensor, biased: torch.Tensor, debiased: torch.Tensor) -> None:
        """Move the averages of rows ``index [m]`` (distinct) towards the cross-entropies ``[m]``."""
        alpha = self.ema
        keep = torch.where(self.seen[index], alpha, 0.0).double()
        self.ema_biased[index] = keep * self.ema_biased[index] + (1 - keep) * biased.double()
        self.ema_debiased[index] = keep * self.ema_debiased[index] + (1 - keep) * debiased.double()
        self.seen[index] = True

    def batch_loss(self, outputs: Outputs, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """LfF's batch loss (see the module docstring)."""
        biased_logits, logits = outputs
        assert biased_logits is not None and logits is not None
        biased_logits, logits = biased_logits.float(), logits.float()
        ce_biased = F.cross_entropy(biased_logits, targets, reduction="none")
        ce_debiased = F.cross_entropy(logits, targets, reduction="none")
        index = index.to(self.device)
        self.update_averages(
            all_gather_cat(index), all_gather_cat(ce_biased.detach()), all_gather_cat(ce_debiased.detach())
        )
        ema_b, ema_d = self.ema_biased[index], self.ema_debiased[index]
        weight = (ema_b / (ema_b + ema_d + LFF_EPSILON)).to(logits.dtype)
        gce = generalized_cross_entropy(biased_logits, targets, self.q)
        return gce.mean() + (weight * ce_debiased).mean()

    def state_dict(self) -> dict[str, Any]:
        """LfF's state for the checkpoint."""
        return {"ema_biased": self.ema_biased.cpu(), "ema_debiased": self.ema_debiased.cpu(), "seen": self.seen.cpu()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.ema_biased = state["ema_biased"].to(self.device)
        self.ema_debiased = state["ema_debiased"].to(self.device)
        self.seen = state["seen"].to(self.device)


def biased_model(encoder: nn.Module, feature_dim: int, n_classes: int) -> nn.Module:
    """LfF's biased model: a copy of ``encoder`` with freshly initialised layers and its own linear head.

    Layers with ``reset_parameters`` are re-initialised from the global generator (seeded per run), so
    the two models start apart, as two independently initialised networks do.
    """
    copied = copy.deepcopy(encoder)
    for module in copied.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return nn.Sequential(copied, nn.Linear(feature_dim, n_classes))
