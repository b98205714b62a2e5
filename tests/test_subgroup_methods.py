"""The subgroup baselines against float64 per-sample references written from their papers' equations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_train import TinyImages

import ceco_fair.training.state as state_module
from ceco_fair.errors import CecoFairError
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.epoch import Progress
from ceco_fair.training.groups import (
    GroupDRO,
    LfF,
    Resample,
    Reweight,
    cell_weights,
    generalized_cross_entropy,
)
from ceco_fair.training.hooks import Checkpointer
from ceco_fair.training.loop import MethodConfig, MethodModel, OptimizerConfig, TrainConfig, pretrain
from ceco_fair.training.methods import METHODS
from ceco_fair.training.staged import JTT

CPU = torch.device("cpu")
N_CLASSES, N_GROUPS = 3, 2


def labels(n: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and sensitive values with unequal cells; cell (2, 1) is empty."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, N_CLASSES, (n,), generator=generator)
    sensitive = torch.randint(0, N_GROUPS, (n,), generator=generator)
    sensitive[targets == 2] = 0
    return targets, sensitive


def cross_entropy64(logits: torch.Tensor, target: int) -> torch.Tensor:
    """−log softmax(logits)[target] for one sample, float64."""
    row = logits.double()
    return torch.logsumexp(row, dim=0) - row[target]


def batches(n: int, size: int, count: int, seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=generator)[:size] for _ in range(count)]


def test_cell_weights_equal_the_per_cell_count_formula() -> None:
    targets, sensitive = labels()
    weights, empty = cell_weights(targets, sensitive, N_CLASSES, N_GROUPS)
    cells = [(int(t), int(s)) for t, s in zip(targets, sensitive, strict=True)]
    nonempty = len(set(cells))
    for i, cell in enumerate(cells):
        assert weights[i].item() == pytest.approx(len(cells) / (nonempty * cells.count(cell)), rel=1e-12)
    assert empty == [(2, 1)]
    assert weights.mean().item() == pytest.approx(1.0)
    for cell in set(cells):  # every non-empty cell carries the same total weight
        total = sum(weights[i].item() for i, c in enumerate(cells) if c == cell)
        assert total == pytest.approx(len(cells) / nonempty)


def test_group_dro_matches_the_online_algorithm_of_sagawa_et_al() -> None:
    targets, sensitive = labels()
    eta = 0.5
    objective = GroupDRO(eta=eta).bind(targets, sensitive, N_CLASSES, N_GROUPS, CPU)
    cells = [int(t) * N_GROUPS + int(s) for t, s in zip(targets, sensitive, strict=True)]
    q = [1.0 if g in cells else 0.0 for g in range(N_CLASSES * N_GROUPS)]
    q = [v / sum(q) for v in q]
    generator = torch.Generator().manual_seed(2)
    for index in batches(len(targets), 8, 4):
        logits = torch.randn(len(index), N_CLASSES, generator=generator, dtype=torch.float64) * 2
        logits.requires_grad_(True)
        losses = {g: [] for g in range(len(q))}
        for row, i in enumerate(index.tolist()):
            losses[cells[i]].append(cross_entropy64(logits[row], int(targets[i])))
        group_loss = {g: (sum(v) / len(v) if v else torch.zeros((), dtype=torch.float64)) for g, v in losses.items()}
        q = [q[g] * math.exp(eta * float(group_loss[g].detach())) for g in range(len(q))]
        q = [v / sum(q) for v in q]
        expected = sum(q[g] * group_loss[g] for g in range(len(q)))
        (expected_grad,) = torch.autograd.grad(expected, logits)
        mine = logits.detach().float().requires_grad_(True)
        value = objective.batch_loss((None, mine), targets[index], index)
        value.backward()
        assert value.detach().item() == pytest.approx(float(expected.detach()), rel=1e-5)
        torch.testing.assert_close(objective.q, torch.tensor(q, dtype=torch.float64), rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(mine.grad, expected_grad.float(), rtol=1e-5, atol=1e-6)
    assert objective.q[2 * N_GROUPS + 1] == 0  # the empty cell never gets weight


def test_reweight_weights_each_sample_by_its_inverse_group_size() -> None:
    targets, sensitive = labels()
    objective = Reweight().bind(targets, sensitive, N_CLASSES, N_GROUPS, CPU)
    cells = [(int(t), int(s)) for t, s in zip(targets, sensitive, strict=True)]
    k = len(set(cells))
    index = batches(len(targets), 10, 1)[0]
    logits = torch.randn(10, N_CLASSES, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = sum(
        len(cells) / (k * cells.count(cells[i])) * cross_entropy64(logits[row], int(targets[i]))
        for row, i in enumerate(index.tolist())
    ) / len(index)
    value = objective.batch_loss((None, logits.float()), targets[index], index)
    assert value.item() == pytest.approx(float(expected), rel=1e-5)


def test_resample_draws_every_group_equally_often() -> None:
    targets, sensitive = labels(60)
    objective = Resample().bind(targets, sensitive, N_CLASSES, N_GROUPS, CPU)
    cells = [int(t) * N_GROUPS + int(s) for t, s in zip(targets, sensitive, strict=True)]
    k = len(set(cells))
    expected = torch.tensor([1 / (k * cells.count(c)) for c in cells], dtype=torch.float64)
    torch.testing.assert_close(objective.probabilities(), expected, rtol=1e-12, atol=0)
    draws = torch.cat([objective.order(e, torch.Generator().manual_seed(e)) for e in range(400)])
    assert len(draws) == 400 * 60
    share = torch.bincount(torch.tensor(cells)[draws], minlength=6).double() / len(draws)
    for cell in set(cells):
        assert share[cell].item() == pytest.approx(1 / k, abs=0.01)
    first = objective.order(0, torch.Generator().manual_seed(0))
    assert torch.equal(first, objective.order(0, torch.Generator().manual_seed(0)))


def test_jtt_upsamples_the_first_stage_errors_and_restarts_from_the_initial_weights() -> None:
    targets, sensitive = labels(20)
    model = torch.nn.Linear(2, 2)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    options = {"stage_one_epochs": 2, "upweight": 4}
    objective = JTT(**options).bind(targets, sensitive, N_CLASSES, N_GROUPS, CPU, model)
    assert objective.stage(0, 5) == (0, 2) and objective.stage(1, 5) == (0, 2) and objective.stage(2, 5) == (2, 3)
    predictions = targets.clone()
    wrong = torch.tensor([1, 4, 7])
    predictions[wrong] = (targets[wrong] + 1) % N_CLASSES
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not objective.end_epoch(model, 0, lambda m: predictions)
    assert objective.end_epoch(model, 1, lambda m: predictions)
    for key, value in model.state_dict().items():
        assert torch.equal(value, initial[key])
    counts = torch.bincount(objective.upsampled(), minlength=20)
    assert counts.tolist() == [4 if i in wrong.tolist() else 1 for i in range(20)]
    order = objective.order(2, torch.Generator().manual_seed(0))
    assert len(order) == 20
    assert (torch.bincount(order, minlength=20) <= counts).all()  # draws without replacement from the pool


def test_generalized_cross_entropy_is_one_minus_p_to_the_q_over_q() -> None:
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    targets = torch.tensor([0, 3, 1, 1, 2])
    q = 0.7
    expected = [(1 - torch.softmax(logits[i], 0)[targets[i]] ** q) / q for i in range(5)]
    torch.testing.assert_close(generalized_cross_entropy(logits, targets, q), torch.stack(expected))


def test_lff_weights_the_debiased_loss_by_relative_difficulty_of_moving_averages() -> None:
    targets, sensitive = labels(12)
    alpha, q = 0.6, 0.7
    objective = LfF(q=q, ema=alpha).bind(targets, sensitive, N_CLASSES, N_GROUPS, CPU)
    ema_b: dict[int, float] = {}
    ema_d: dict[int, float] = {}
    generator = torch.Generator().manual_seed(5)
    for index in [torch.tensor([0, 1, 2, 3]), torch.tensor([2, 3, 4, 5]), torch.tensor([3, 0, 6, 7])]:
        biased = torch.randn(4, N_CLASSES, generator=generator, dtype=torch.float64).requires_grad_(True)
        debiased = torch.randn(4, N_CLASSES, generator=generator, dtype=torch.float64).requires_grad_(True)
        total = torch.zeros((), dtype=torch.float64)
        for row, i in enumerate(index.tolist()):
            y = int(targets[i])
            ce_b, ce_d = cross_entropy64(biased[row], y), cross_entropy64(debiased[row], y)
            ema_b[i] = alpha * ema_b[i] + (1 - alpha) * float(ce_b.detach()) if i in ema_b else float(ce_b.detach())
            ema_d[i] = alpha * ema_d[i] + (1 - alpha) * float(ce_d.detach()) if i in ema_d else float(ce_d.detach())
            weight = ema_b[i] / (ema_b[i] + ema_d[i] + 1e-8)
            p_y = torch.softmax(biased[row], 0)[y]
            total = total + (1 - p_y**q) / q + weight * ce_d
        expected = total / len(index)
        grads = torch.autograd.grad(expected, (biased, debiased))
        mine_b = biased.detach().float().requires_grad_(True)
        mine_d = debiased.detach().float().requires_grad_(True)
        value = objective.batch_loss((mine_b, mine_d), targets[index], index)
        value.backward()
        assert value.item() == pytest.approx(float(expected.detach()), rel=1e-5)
        torch.testing.assert_close(mine_b.grad, grads[0].float(), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(mine_d.grad, grads[1].float(), rtol=1e-4, atol=1e-6)
    for i, value in ema_b.items():
        assert objective.ema_biased[i].item() == pytest.approx(value, rel=1e-6)
        assert objective.ema_debiased[i].item() == pytest.approx(ema_d[i], rel=1e-6)


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("groupdro", {"eta": 0}, "eta"),
        ("groupdro", {"eta": -1.0}, "eta"),
        ("jtt", {"upweight": 0}, "upweight"),
        ("jtt", {"upweight": 2.5}, "upweight"),
        ("lff", {"q": 0}, "q"),
        ("reweight", {"eta": 0.1}, "eta"),
    ],
)
def test_bad_options_name_the_key(name: str, options: dict[str, Any], key: str) -> None:
    with pytest.raises(CecoFairError, match=rf"methods\[1\]\.{key}"):
        METHODS[name].check_options(options, "methods[1]")


def test_jtt_first_stage_must_be_shorter_than_training() -> None:
    with pytest.raises(CecoFairError, match=r"stage_one_epochs.*train\.epochs \(3\)"):
        JTT.check_epochs({"stage_one_epochs": 3}, 3, "methods[0]")
    JTT.check_epochs({"stage_one_epochs": 2}, 3, "methods[0]")


def test_group_label_methods_need_two_sensitive_values() -> None:
    with pytest.raises(CecoFairError, match="groupdro trains with the sensitive attribute"):
        GroupDRO.check_labels(torch.zeros(5, dtype=torch.long), "train")
    JTT.check_labels(torch.zeros(5, dtype=torch.long), "train")


class Interrupt(Exception):
    """Stands for a killed process after a checkpoint."""


def train(name: str, path: Path, *, epochs: int = 3, die_after: int | None = None, resume: bool = False) -> Any:
    method = MethodConfig(name, METHODS[name].check_options({"stage_one_epochs": 1} if name == "jtt" else {}, "m"))
    torch.manual_seed(0)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
    config = TrainConfig(epochs=epochs, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), max_batches_per_epoch=2)
    history = pretrain(
        model,
        method,
        TinyImages(),
        config,
        seed=0,
        device=CPU,
        hooks=[Checkpointer(path, resume=resume)],
        progress=Progress(show=False),
    )
    return history, model.state_dict()


@pytest.mark.parametrize("name", ["groupdro", "reweight", "resample", "jtt", "lff"])
def test_resume_after_a_kill_ends_bit_for_bit_like_an_uninterrupted_run(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_history, whole = train(name, tmp_path / "whole.pt")
    real_save = state_module.save_checkpoint

    def save_then_die(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        if state["epoch"] == 1:
            raise Interrupt

    monkeypatch.setattr(state_module, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupt):
        train(name, tmp_path / "cut.pt")
    monkeypatch.setattr(state_module, "save_checkpoint", real_save)
    saved = torch.load(tmp_path / "cut.pt", weights_only=True)["objective"]
    assert (name in ("reweight", "resample")) == (saved == {})
    resumed_history, resumed = train(name, tmp_path / "cut.pt", resume=True)
    assert [row["loss"] for row in resumed_history] == [row["loss"] for row in whole_history]
    for key, value in whole.items():
        assert torch.equal(value, resumed[key]), key
