"""Subgroup-robustness baselines: group DRO, loss reweighting, group-balanced resampling, JTT, LfF and CnC.

Each method trains the encoder and a linear head with cross-entropy, like ``ce``; what differs is
how the samples of a batch are weighted or drawn. A (target, sensitive) *group* (or cell) of a
sample is ``g = target · n_groups + sensitive``; ``G = n_classes · n_groups`` groups in all, ``K``
of them non-empty in the training set of ``n`` samples, ``n_g`` samples in group ``g``.

* ``groupdro`` (Sagawa et al. 2020): per batch, ``L_g`` = mean cross-entropy of the batch's samples
  of group ``g`` (0 for a group absent from the batch), ``q_g ← q_g · exp(η · L_g)``, ``q ← q / Σ q``,
  loss ``Σ_g q_g · L_g``. ``q`` starts uniform over the non-empty groups.
* ``reweight``: loss ``(1/B) Σ_i w_i · CE_i`` with ``w_i = n / (K · n_{g(i)})`` (mean weight 1 over the
  training set; every group weighs the same in expectation).
* ``resample``: each epoch draws ``n`` samples with replacement, sample ``i`` with probability
  ``1 / (K · n_{g(i)})`` (every non-empty group equally likely); plain cross-entropy.
* ``jtt`` (Liu et al. 2021): plain cross-entropy for ``stage_one_epochs``; then the training
  samples that model misclassifies (the error set ``E``) are upsampled ``upweight`` (λ) times and
  the model is trained again from its initial weights for the remaining epochs. Each epoch of the
  second stage keeps the training set's length: ``n`` draws without replacement from the upsampled
  multiset (every sample once, every sample of ``E`` λ times). Uses no group labels.
* ``lff`` (Nam et al. 2020): a biased model trained with the generalised cross-entropy
  ``GCE = (1 − p_y^q) / q`` and the debiased model with ``W_i · CE_i``, ``W_i = ℓ_b(i) / (ℓ_b(i) + ℓ_d(i))``
  where ``ℓ_b``, ``ℓ_d`` are per-sample exponential moving averages (factor ``ema``) of the two models'
  cross-entropies (the first value of a sample is taken as it is). Loss: batch mean of GCE plus batch
  mean of ``W · CE``. Uses no group labels.
* ``cnc`` (Correct-n-Contrast, Zhang et al. 2022): plain cross-entropy for ``stage_one_epochs``; that
  model's predictions ``ŷ`` on the training set are the inferred groups. The model then restarts from its
  initial weights and trains with ``λ · CE + (1 − λ) · L_CnC`` (``λ`` = ``lambda_ce``), ``L_CnC`` the
  contrastive term of :class:`~ceco_fair.losses.CnCLoss` on the projection head's output: positives of
  an anchor are the samples of its class predicted otherwise, negatives the samples of another class
  predicted alike. Each second-stage epoch draws ``n`` samples with replacement, every non-empty
  (class, ``ŷ``) cell equally likely (as ``resample`` does with the (target, sensitive) groups), so that a
  batch holds positives and negatives for most anchors; the authors instead draw each anchor together
  with its positives and negatives. Uses no group labels.

Under data parallelism every process holds the same state: group DRO sums the group losses and counts
of all processes before updating ``q``, LfF gathers every process's indices and losses before updating
the averages, CnC contrasts each process's anchors against the gathered global batch, and the sampling
orders come from generators every process seeds alike. The state (``q``, the JTT error set and initial
weights, the LfF averages, the CnC stage, first-stage predictions and initial weights) goes into the
checkpoint.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from typing import Any, Final, Self

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ceco_fair.errors import CecoFairError
from ceco_fair.losses import CnCLoss
from ceco_fair.models.encoders import ProjectionHead
from ceco_fair.training.distributed import DistributedContext, global_term_sums
from ceco_fair.training.method import Method, ModelParts, OptionError, Outputs, Predict

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
        return self

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


class TwoStageMethod(SubgroupMethod):
    """A method that trains ``stage_one_epochs`` with cross-entropy, then restarts from its initial weights.

    Its learning-rate schedule restarts with the model.
    """

    def __init__(self, stage_one_epochs: int = 1) -> None:
        super().__init__()
        if stage_one_epochs < 1:
            raise OptionError(f"stage_one_epochs: expected a positive integer, got {stage_one_epochs}")
        self.stage_one = int(stage_one_epochs)
        self.initial: dict[str, torch.Tensor] | None = None

    @classmethod
    def check_epochs(cls, options: Mapping[str, Any], epochs: int, path: str) -> None:
        """The first stage must leave epochs: ``stage_one_epochs < train.epochs``.

        Raises:
            CecoFairError: naming ``stage_one_epochs`` and ``train.epochs``.
        """
        stage_one = options.get("stage_one_epochs", cls.option_defaults()["stage_one_epochs"])
        if int(stage_one) >= epochs:
            raise CecoFairError(
                f"{path}.stage_one_epochs: expected fewer than train.epochs ({epochs}), got {stage_one}"
            )

    def bind(
        self,
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        n_classes: int,
        n_groups: int,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> Self:
        """Bind to the labels and keep ``model``'s initial weights (CPU copies)."""
        super().bind(targets, sensitive, n_classes, n_groups, device, model)
        state = model.state_dict() if model is not None else {}
        self.initial = {k: v.detach().cpu().clone() for k, v in state.items()}
        return self

    def stage(self, epoch: int, epochs: int) -> tuple[int, int]:
        """Stage one's epochs, then the rest (the schedule restarts with the model)."""
        return (0, self.stage_one) if epoch < self.stage_one else (self.stage_one, epochs - self.stage_one)

    def restart(self, model: nn.Module) -> None:
        """Restore the initial weights into ``model`` (once)."""
        assert self.initial is not None
        model.load_state_dict(self.initial)
        self.initial = None


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

    def bind(
        self,
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        n_classes: int,
        n_groups: int,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> Self:
        """Bind to the labels; ``q`` starts uniform over the non-empty groups."""
        super().bind(targets, sensitive, n_classes, n_groups, device, model)
        n_cells = self.n_classes * self.n_groups
        present = (torch.bincount(self.groups, minlength=n_cells) > 0).double()
        self.q = present / present.sum()
        return self

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

    def bind(
        self,
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        n_classes: int,
        n_groups: int,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> Self:
        """Bind to the labels and weigh each sample."""
        super().bind(targets, sensitive, n_classes, n_groups, device, model)
        self.weights = balancing_weights(self.groups, self.n_classes * self.n_groups)[0].float()
        return self

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


class JTT(TwoStageMethod):
    """Just train twice: ERM, then retraining from the initial weights with the error set upsampled.

    Args:
        stage_one_epochs: epochs of the first (identification) stage, ``>= 1`` and fewer than ``train.epochs``.
        upweight: ``λ >= 1``, how many times each sample of the error set is drawn in stage two.
    """

    name = "jtt"

    def __init__(self, stage_one_epochs: int = 1, upweight: int = 20) -> None:
        super().__init__(stage_one_epochs)
        if upweight < 1:
            raise OptionError(f"upweight: expected an integer >= 1, got {upweight}")
        self.upweight = int(upweight)
        self.errors: torch.Tensor | None = None

    def upsampled(self) -> torch.Tensor:
        """Every row once and every row of the error set ``upweight`` times in all ``[n + (λ − 1)|E|]``."""
        rows = torch.arange(self.n)
        if self.errors is None:
            return rows
        extra = self.errors.repeat(self.upweight - 1)
        return torch.cat([rows, extra])

    def order(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """JTT's sample order for the epoch ``[n]``."""
        if self.errors is None:
            return torch.randperm(self.n, generator=generator)
        pool = self.upsampled()
        return pool[torch.randperm(len(pool), generator=generator)[: self.n]]

    def end_epoch(self, model: nn.Module, epoch: int, predict: Predict) -> bool:
        """JTT: after the first stage, find the error set and restore the initial weights."""
        if epoch + 1 != self.stage_one or self.errors is not None:
            return False
        predictions = predict(model).cpu()
        targets = (self.groups.cpu() // self.n_groups).long()
        self.errors = torch.nonzero(predictions != targets).flatten()
        logger.info("jtt: %d of %d training samples misclassified after stage one", len(self.errors), self.n)
        self.restart(model)
        return True

    def state_dict(self) -> dict[str, Any]:
        """JTT's state for the checkpoint."""
        return {"errors": self.errors, "initial": self.initial}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.errors = state["errors"]
        self.initial = state["initial"]


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

    def bind(
        self,
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        n_classes: int,
        n_groups: int,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> Self:
        """Bind to the labels; the averages start at zero, no sample seen."""
        super().bind(targets, sensitive, n_classes, n_groups, device, model)
        self.ema_biased = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.ema_debiased = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.seen = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        return self

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


class CorrectNContrast(TwoStageMethod):
    """Correct-n-Contrast: ERM, then ``λ · CE + (1 − λ) · L_CnC`` from the initial weights (module docstring).

    Stage one trains the encoder and classifier with plain cross-entropy on a random order. Its predictions
    ``ŷ [n]`` on the (un-augmented) training set are the pseudo-groups; the model restarts from its initial
    weights (all of them: encoder, projection head, classifier) and trains with the cross-entropy of the
    classifier and :class:`~ceco_fair.losses.CnCLoss` of the projection head's output, ``ŷ`` of each
    sample as its ``sensitive`` value, on draws that balance the (class, ``ŷ``) cells.

    Args:
        lambda_ce: ``λ ∈ [0, 1]``, the weight of the cross-entropy in stage two: ``λ · CE + (1 − λ) · L_CnC``
            (the authors' ``1 − contrastive_weight``, 0.5 by default).
        temperature: ``τ > 0`` of the contrastive term (the authors' 0.05).
        stage_one_epochs: epochs of the ERM stage, ``>= 1`` and fewer than ``train.epochs``.
    """

    name = "cnc"

    def __init__(self, lambda_ce: float = 0.5, temperature: float = 0.05, stage_one_epochs: int = 1) -> None:
        if not 0 <= lambda_ce <= 1:
            raise OptionError(f"lambda_ce: expected a value in [0, 1], got {lambda_ce}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise OptionError(f"temperature: expected a finite number > 0, got {temperature}")
        super().__init__(stage_one_epochs)
        self.lambda_ce, self.temperature = float(lambda_ce), float(temperature)
        self.predictions: torch.Tensor | None = None  # [n] stage-one predictions on the device
        self.contrastive = CnCLoss(temperature=self.temperature)
        self.contrastive.check_values = False  # ids come from a validated dataset: no read-backs per step

    def model_parts(self, encoder: nn.Module, feature_dim: int, n_classes: int, projection_dim: int) -> ModelParts:
        """A projection head for the contrastive term, then the classifier."""
        head = ProjectionHead(feature_dim, projection_dim)
        return ModelParts(head=head, classifier=nn.Linear(feature_dim, n_classes))

    def bind(
        self,
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        n_classes: int,
        n_groups: int,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> Self:
        """Bind to the labels and keep the initial weights; no anchor counted yet."""
        super().bind(targets, sensitive, n_classes, n_groups, device, model)
        self.targets = self.groups // self.n_groups  # [n] on the device
        self.anchors = torch.zeros(2, dtype=torch.int64, device=self.device)  # this epoch: valid, all
        return self

    def probabilities(self) -> torch.Tensor:
        """Stage two's draw probability of each sample ``1 / (K · n_{(y, ŷ)})`` ``[n]`` (float64, CPU)."""
        assert self.predictions is not None
        cells = (self.targets * self.n_classes + self.predictions).cpu()
        weights, _ = balancing_weights(cells, self.n_classes * self.n_classes)
        return weights / self.n

    def order(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """A random order in stage one; ``n`` (class, ``ŷ``)-balanced draws with replacement in stage two."""
        if self.predictions is None:
            return torch.randperm(self.n, generator=generator)
        return torch.multinomial(self.probabilities(), self.n, replacement=True, generator=generator)

    def batch_loss(self, outputs: Outputs, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Cross-entropy in stage one; ``λ · CE + (1 − λ) · L_CnC`` in stage two.

        Args:
            outputs: projections ``[B, P]`` and logits ``[B, C]`` of this process's samples.
            targets: their classes ``[B]``.
            index: their rows in the training set ``[B]``.

        Returns:
            0-dim loss; under data parallelism the contrastive term is this process's share of the global
            batch's term times the world size (:func:`~ceco_fair.training.distributed.global_term_sums`).
        """
        projected, logits = outputs
        assert projected is not None and logits is not None
        cross_entropy = F.cross_entropy(logits.float(), targets)
        if self.predictions is None:
            # The projection head joins the graph with a zero weight, so that data parallelism finds every
            # parameter used; its stage-one weights are discarded at the restart.
            return cross_entropy + 0.0 * projected.float().sum()
        pseudo = self.predictions[index.to(self.device)]
        context = DistributedContext(dist.get_rank(), world_size()) if world_size() > 1 else DistributedContext()
        sums = global_term_sums(
            self.contrastive,
            context,
            projected.float()[:, None],  # [B, V=1, P]: one view, each sample its own instance
            targets,
            pseudo,
            n_classes=self.n_classes,
            n_groups=self.n_classes,
        )
        self.anchors += torch.stack([sums[0].n_valid, sums[0].n_valid.new_tensor(len(targets) * context.world_size)])
        contrastive = self.contrastive.combine(sums) * context.world_size
        weight = self.lambda_ce
        return weight * cross_entropy + (1 - weight) * contrastive

    def end_epoch(self, model: nn.Module, epoch: int, predict: Predict) -> bool:
        """After stage one: keep the predictions and restore the initial weights; log how many anchors had positives."""
        if self.predictions is not None:
            valid, total = (int(v) for v in self.anchors)
            logger.info("cnc: epoch %d: %d of %d anchors had a positive in their batch", epoch + 1, valid, total)
        self.anchors.zero_()
        if epoch + 1 != self.stage_one or self.predictions is not None:
            return False
        self.predictions = predict(model).to(self.device).long()
        wrong = int((self.predictions != self.targets).sum())
        cells = int(torch.unique(self.targets * self.n_classes + self.predictions).numel())
        logger.info(
            "cnc: %d of %d training samples misclassified after stage one, %d (class, prediction) cells",
            wrong,
            self.n,
            cells,
        )
        if wrong == 0:
            logger.warning(
                "cnc: stage one classifies every training sample correctly: no anchor has a positive, "
                "stage two trains with cross-entropy only"
            )
        self.restart(model)
        return True

    def state_dict(self) -> dict[str, Any]:
        """CnC's state for the checkpoint: the stage, stage one's predictions and (in stage one) the initial weights."""
        predictions = None if self.predictions is None else self.predictions.cpu()
        return {"stage": 1 if predictions is None else 2, "predictions": predictions, "initial": self.initial}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        predictions = state["predictions"]
        assert (state["stage"] == 1) == (predictions is None), "cnc checkpoint: stage and predictions disagree"
        self.predictions = None if predictions is None else predictions.to(self.device)
        self.initial = state["initial"]


SUBGROUP_METHODS: Final[tuple[type[SubgroupMethod], ...]] = (GroupDRO, Reweight, Resample, JTT, LfF, CorrectNContrast)
"""The subgroup-robustness baselines (registered in :data:`ceco_fair.training.methods.METHODS`)."""


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
