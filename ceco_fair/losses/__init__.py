"""Contrastive losses (SimCLR, SupCon, ConTeX, FSCL, BiasCon, CnC's term) on one block-wise InfoNCE engine.

Example:
    >>> from ceco_fair.losses import build_loss
    >>> loss_fn = build_loss("contex", temperature=0.1)
    >>> value = loss_fn(features, labels)  # features [N, V, D], labels [N]
"""

from ceco_fair.losses.engine import IdRanges, Term, TermSum, infonce_terms
from ceco_fair.losses.named import (
    BiasConLoss,
    CnCLoss,
    ConTeXLoss,
    ContrastiveLoss,
    FSCLLoss,
    SimCLRLoss,
    SupConLoss,
)
from ceco_fair.losses.registry import LOSSES, build_loss, loss_arguments

__all__ = [
    "LOSSES",
    "BiasConLoss",
    "CnCLoss",
    "ConTeXLoss",
    "ContrastiveLoss",
    "FSCLLoss",
    "IdRanges",
    "SimCLRLoss",
    "SupConLoss",
    "Term",
    "TermSum",
    "build_loss",
    "infonce_terms",
    "loss_arguments",
]
