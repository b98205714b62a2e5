"""Per-epoch curves of a run: how fast the representation becomes useful, and how it distorts.

With ``eval.track_every: K`` the encoder is measured after every K-th epoch (and the last) on a
fixed subsample of ``eval.track_points`` training images (the kNN bank) and test images (the
queries), and each measured epoch becomes one row of ``curves.csv``:

- the kNN values (specs of kind ``curve``): the predictions of a k = 20 cosine nearest-neighbour
  vote over the bank's features (one vote per neighbour; ties go to the smaller class index),
  measured by the metric the spec names in ``of`` (accuracy, and the bias-conflicting or
  worst-group accuracy as :mod:`ceco_fair.metrics` defines them) for the runs of the spec's kinds;
- the representation diagnostics whose spec has ``curve`` (retrieval within cell, variance
  ratio), measured on the test subsample and its two views as in
  :mod:`ceco_fair.evaluation.diagnostics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import FairnessDataset, ImageDataset
from ceco_fair.evaluation.diagnostics import view_features
from ceco_fair.evaluation.features import FeatureReader
from ceco_fair.evaluation.probe import Encoder
from ceco_fair.metrics import bias_metrics, group_metrics
from ceco_fair.metrics.registry import REPRESENTATION_METRICS, RepresentationInputs, representation_scores
from ceco_fair.metrics.specs import METRIC_SPECS, curve_metrics
from ceco_fair.results.layout import MetricKind

KNN_NEIGHBOURS = 20


def knn_predict(
    bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, k: int = KNN_NEIGHBOURS
) -> torch.Tensor:
    """Majority vote of the ``k`` most cosine-similar bank rows for every query.

    Args:
        bank: ``[m, D]`` reference features.
        bank_labels: ``[m]`` their integer classes (non-negative).
        queries: ``[q, D]`` features to classify.
        k: neighbours per query (at most ``m``).

    Returns:
        ``[q]`` int64 predicted classes; a tie goes to the smaller class index.
    """
    bank_n = F.normalize(bank.double(), dim=1)
    queries_n = F.normalize(queries.double(), dim=1)
    k = min(k, len(bank))
    neighbours = (queries_n @ bank_n.T).topk(k, dim=1).indices
    n_classes = int(bank_labels.max()) + 1
    votes = torch.zeros(len(queries), n_classes, dtype=torch.float64)
    votes.scatter_add_(1, bank_labels.long()[neighbours], torch.ones_like(neighbours, dtype=torch.float64))
    return votes.argmax(dim=1)


def balanced_subsample(
    targets: torch.Tensor, sensitive: torch.Tensor, points: int, generator: torch.Generator
) -> torch.Tensor:
    """Rows drawn equally from every (target, sensitive) cell present.

    Each present cell gives ``max(1, points // n_cells)`` rows, or all of its rows when it has
    fewer; rows are drawn without replacement.

    Args:
        targets: ``int64 [n]`` classes.
        sensitive: ``int64 [n]`` groups.
        points: the bank's size when every cell is large enough.
        generator: seeds the draw.

    Returns:
        ``int64 [m]`` sorted row indices.
    """
    cells = targets.long() * (int(sensitive.max()) + 1) + sensitive.long()
    present = torch.unique(cells)
    quota = max(1, points // len(present))
    chosen = []
    for cell in present.tolist():
        members = torch.nonzero(cells == cell).flatten()
        order = torch.randperm(len(members), generator=generator)[:quota]
        chosen.append(members[order])
    return torch.cat(chosen).sort().values


class EpochTracker:
    """Measures an encoder on fixed subsamples of the training and test sets (one ``curves.csv`` row).

    Args:
        train_set: the training split (the kNN bank is drawn from it).
        test_set: the test split (the queries).
        kind: ``bias`` or ``group``: which worst-case accuracy the curve reports.
        augment: the training augmentation (the test subsample's two views).
        seed: seeds the subsamples and the views.
        device: where the encoder runs.
        points: images drawn from each split (all of a smaller split).
        batch_size: images per forward pass.
    """

    def __init__(
        self,
        train_set: FairnessDataset,
        test_set: ImageDataset,
        *,
        kind: MetricKind,
        augment: AugmentConfig,
        seed: int,
        device: torch.device,
        points: int,
        batch_size: int,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.train_set, self.test_set = train_set, test_set
        self.bank_rows = self._subsample(len(train_set), points, generator)
        self.query_rows = self._subsample(len(test_set), points, generator)
        self.balanced_rows = balanced_subsample(
            train_set.targets, train_set.sensitive, points, torch.Generator().manual_seed(seed + 1)
        )
        self.kind = kind
        self.augment = augment
        self.seed = seed
        self.reader = FeatureReader(device, batch_size, normalization=augment, progress=False)

    @staticmethod
    def _subsample(n: int, points: int, generator: torch.Generator) -> torch.Tensor:
        if n <= points:
            return torch.arange(n)
        return torch.randperm(n, generator=generator)[:points].sort().values

    def _features(self, encoder: Encoder, dataset: ImageDataset, rows: torch.Tensor) -> Any:
        return self.reader.features(encoder, dataset, "tracked", indices=rows)

    def __call__(self, encoder: Encoder) -> dict[str, float]:
        """The curve values of ``encoder`` now."""
        queries = self._features(encoder, self.test_set, self.query_rows)
        targets = queries.targets.long().numpy()
        sensitive = queries.sensitive.long().numpy()
        row: dict[str, float] = {}
        banks = {"biased": self.bank_rows, "balanced": self.balanced_rows}
        for bank_name, rows in banks.items():
            bank = self._features(encoder, self.train_set, rows)
            predictions = knn_predict(bank.features, bank.targets, queries.features).numpy()
            if self.kind == "bias":
                measured = bias_metrics(targets, predictions, sensitive)
            else:
                measured = group_metrics(targets, predictions, sensitive, n_boot=0, rates=False)
            for name in curve_metrics():
                spec = METRIC_SPECS[name]
                if spec.of is not None and spec.bank == bank_name and self.kind in spec.runs:
                    row[name] = float(measured[spec.of])
        diagnostics = tuple(name for name in curve_metrics() if name in REPRESENTATION_METRICS)
        views = view_features(
            encoder, self.test_set, self.augment, seed=self.seed, reader=self.reader, indices=self.query_rows
        )
        inputs = RepresentationInputs(
            queries.features,
            targets,
            sensitive,
            self.seed,
            np.arange(len(targets)),
            views=(views.first, views.second),
        )
        row.update(representation_scores(inputs, ("features", "views"), diagnostics))
        return row
