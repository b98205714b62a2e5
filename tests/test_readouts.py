"""The balanced and head read-outs: the balanced probe's loss, what it recovers, and audit_features' read-outs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ceco_fair import audit_features
from ceco_fair.evaluation.probe import Features, ProbeConfig, probe_loss, train_linear_probe
from ceco_fair.evaluation.readouts import head_predictions, train_balanced_probe
from ceco_fair.training.groups import cell_weights

CPU = torch.device("cpu")


def test_balanced_probe_loss_is_the_mean_over_cells_of_each_cells_mean_loss() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 0, 1])
    sensitive = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0, 1])
    logits = torch.randn(9, 2, generator=generator, dtype=torch.float64)
    weights, empty = cell_weights(targets, sensitive, 2, 2)
    assert empty == []
    cells: dict[tuple[int, int], list[float]] = {}
    for i in range(9):
        row = logits[i]
        loss = float(torch.logsumexp(row, 0) - row[targets[i]])
        cells.setdefault((int(targets[i]), int(sensitive[i])), []).append(loss)
    expected = sum(sum(v) / len(v) for v in cells.values()) / len(cells)
    assert probe_loss(logits, targets, weights).item() == pytest.approx(expected, rel=1e-12)
    plain = float(sum(sum(v) for v in cells.values()) / 9)
    assert probe_loss(logits, targets).item() == pytest.approx(plain, rel=1e-12)


def spurious(n: int, aligned: float, seed: int) -> Features:
    """Feature 0 carries the target with noise; feature 1 is the sensitive value, equal to the target on ``aligned``."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 2, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) > aligned
    sensitive = torch.where(flip, 1 - targets, targets)
    shape = (2 * targets - 1).float() + 0.8 * torch.randn(n, generator=generator)
    colour = 3 * (2 * sensitive - 1).float() + 0.1 * torch.randn(n, generator=generator)
    return Features(torch.stack([shape, colour], dim=1), targets, sensitive)


def conflicting_accuracy(predictions: torch.Tensor, test: Features) -> float:
    conflicting = test.targets != test.sensitive
    return float((predictions[conflicting] == test.targets[conflicting]).float().mean())


def test_balanced_probe_recovers_what_the_erm_probe_gives_to_the_bias() -> None:
    train, test = spurious(2000, 0.97, 0), spurious(2000, 0.5, 1)
    config = ProbeConfig(epochs=30, lr=0.05)
    erm = train_linear_probe(train, 2, config, seed=0, device=CPU)
    balanced = train_balanced_probe(train, 2, config, seed=0, device=CPU, n_groups=2)
    erm_score = conflicting_accuracy(erm.predict(test.features), test)
    balanced_score = conflicting_accuracy(balanced.predict(test.features), test)
    assert erm_score < 0.5 < 0.75 < balanced_score


def test_empty_cells_are_skipped_and_named(caplog: pytest.LogCaptureFixture) -> None:
    train = spurious(200, 1.0, 0)  # no bias-conflicting sample: cells (0, 1) and (1, 0) are empty
    with caplog.at_level(logging.INFO, logger="ceco_fair.evaluation.readouts"):
        probe = train_balanced_probe(train, 2, ProbeConfig(epochs=2), seed=0, device=CPU, n_groups=2)
    assert "(target 0, sensitive 1), (target 1, sensitive 0)" in caplog.text
    assert torch.isfinite(probe.linear.weight).all()


def test_head_predictions_are_the_argmax_of_the_head() -> None:
    head = torch.nn.Linear(3, 4)
    features = torch.randn(10, 3)
    expected = head(features).argmax(dim=1)
    assert torch.equal(head_predictions(head, features, CPU, batch_size=3), expected)


def test_audit_features_measures_every_readout() -> None:
    train, test = spurious(600, 0.95, 0), spurious(400, 0.5, 1)
    head = torch.nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        head.bias.zero_()
    result = audit_features(
        train.features,
        train.targets,
        test.features,
        test.targets,
        test.sensitive,
        metrics="group",
        n_boot=0,
        probe_config=ProbeConfig(epochs=5),
        train_sensitive=train.sensitive,
        head=head,
        diagnostics=False,
    )
    assert set(result.readouts) == {"balanced", "head"}
    assert set(result.readouts["balanced"]) == set(result.metrics)
    shape_only = (test.features[:, 0] > 0).long()
    accuracy = float((shape_only == test.targets).float().mean())
    assert result.readouts["head"]["accuracy"] == pytest.approx(accuracy)
    frame = result.to_frame()
    assert set(frame["readout"]) == {"linear", "balanced", "head"}
    assert np.isclose(frame[(frame.readout == "head") & (frame.metric == "accuracy")]["value"].item(), accuracy)
