"""Two-stage subgroup baselines: ERM first, then a restart from the initial weights (JTT, CnC).

* JTT (:class:`JTT`, Liu et al. 2021): plain cross-entropy for ``stage_one_epochs``; then the training
  samples that model misclassifies (the error set ``E``) are upsampled ``upweight`` (λ) times and
  the model is trained again from its initial weights for the remaining epochs. Each epoch of the
  second stage keeps the training set's length: ``n`` draws without replacement from the upsampled
  multiset (every sample once, every sample of ``E`` λ times). Uses no group labels.
* Correct-n-Contrast (:class:`CorrectNContrast`, Zhang et al. 2022): plain cross-entropy for
  ``stage_one_epochs``; that model's predictions ``ŷ`` on the training set are the inferred groups. The
  model then restarts from its initial weights and trains with ``λ · CE + (1 − λ) · L_CnC`` (``λ`` =
  ``lambda_ce``), ``L_CnC`` the contrastive term of :class:`~ceco_fair.losses.CnCLoss` on the projection
  head's output: positives of an anchor are the samples of its class predicted otherwise, negatives the
  samples of another class predicted alike. Each second-stage epoch draws ``n`` samples with replacement,
  every non-empty (class, ``ŷ``) cell equally likely (as resampling does with the (target, sensitive)
  groups), so that a batch holds positives and negatives for most anchors; the authors instead draw each
  anchor together with its positives and negatives. Uses no group labels.

Under data parallelism CnC contrasts each process's anchors against the gathered global batch, and the
sampling orders come from generators every process seeds alike. The state (the JTT error set, the CnC
stage and first-stage predictions, and the initial weights until the restart) goes into the checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ceco_fair.errors import CecoFairError
from ceco_fair.losses import CnCLoss
from ceco_fair.models.encoders import ProjectionHead
from ceco_fair.training.distributed import DistributedContext, global_term_sums
from ceco_fair.training.groups import SubgroupMethod, balancing_weights, world_size
from ceco_fair.training.method import ModelParts, OptionError, Outputs, Predict

logger = logging.getLogger(__name__)


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

    def on_bind(self, model: nn.Module | None) -> None:
        """Bind to the labels and keep ``model``'s initial weights (CPU copies)."""
        super().on_bind(model)
        state = model.state_dict() if model is not None else {}
        self.initial = {k: v.detach().cpu().clone() for k, v in state.items()}

    def stage(self, epoch: int, epochs: int) -> tuple[int, int]:
        """Stage one's epochs, then the rest (the schedule restarts with the model)."""
        return (0, self.stage_one) if epoch < self.stage_one else (self.stage_one, epochs - self.stage_one)

    def restart(self, model: nn.Module) -> None:
        """Restore the initial weights into ``model`` (once)."""
        assert self.initial is not None
        model.load_state_dict(self.initial)
        self.initial = None


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

    def on_bind(self, model: nn.Module | None) -> None:
        """Bind to the labels and keep the initial weights; no anchor counted yet."""
        super().on_bind(model)
        self.targets = self.groups // self.n_groups  # [n] on the device
        self.anchors = torch.zeros(2, dtype=torch.int64, device=self.device)  # this epoch: valid, all

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
