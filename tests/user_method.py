"""A user's method, added with no edit inside ceco_fair: SupCon with per-sample weights ``1 / |group|``.

Loaded by protocols as ``user_method:GroupWeightedSupCon`` (tests put tests/ on the path) or
registered by name with :func:`ceco_fair.training.methods.register_method`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ceco_fair import Method, ModelParts, OptionError
from ceco_fair.models.encoders import ProjectionHead
from ceco_fair.training.distributed import DistributedContext


class GroupWeightedSupCon(Method):
    """Supervised contrastive loss of two views, each anchor weighted by ``1 / n_g``.

    ``n_g`` is the number of training samples in the anchor's (target, sensitive) group, so that
    every group weighs the same in expectation. Loss: ``Σ_i w_i ℓ_i / Σ_i w_i`` over the ``2B``
    anchors, ``ℓ_i`` SupCon's per-anchor term (Khosla et al. 2020, ``L_out``) at temperature τ.

    Args:
        temperature: ``τ > 0``.
    """

    name = "supcon_group_weighted"
    n_views = 2
    group_labels = True
    calls: ClassVar[list[int]] = []

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if not temperature > 0:
            raise OptionError(f"temperature: expected a number > 0, got {temperature}")
        self.temperature = float(temperature)
        self.weights = torch.zeros(0)

    def model_parts(self, encoder: nn.Module, feature_dim: int, n_classes: int, projection_dim: int) -> ModelParts:
        return ModelParts(head=ProjectionHead(feature_dim, projection_dim))

    def start(self, dataset: Any, model: nn.Module, device: torch.device, context: DistributedContext) -> None:
        super().start(dataset, model, device, context)
        groups = torch.as_tensor(dataset.targets).long() * dataset.n_groups + torch.as_tensor(dataset.sensitive).long()
        self.weights = (1.0 / torch.bincount(groups).double()[groups]).float().to(device)

    def loss(
        self,
        model: nn.Module,
        views: list[torch.Tensor],
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        GroupWeightedSupCon.calls.append(len(index))
        projected, _ = model(torch.cat(views))
        z = F.normalize(projected.float(), dim=1)  # [2B, P]
        labels = targets.repeat(len(views))
        others = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
        logits = (z @ z.T / self.temperature).masked_fill(~others, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positives = (labels[:, None] == labels[None, :]) & others
        per_anchor = -log_prob.masked_fill(~positives, 0).sum(1) / positives.sum(1)
        weight = self.weights[index.to(z.device)].repeat(len(views))
        return (weight * per_anchor).sum() / weight.sum()
