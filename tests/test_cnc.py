"""Correct-n-Contrast (``cnc``): its contrastive term against a float64 loop written from the paper's equation,
its masks on a hand-made batch, its two stages, exact resume, two gloo processes and bad options."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import free_port
from test_train import TinyImages
from tiny_protocol import tiny_protocol_dict

import ceco_fair.training.state as state_module
from ceco_fair.errors import CecoFairError
from ceco_fair.losses import CnCLoss
from ceco_fair.models.encoders import build_encoder
from ceco_fair.results.layout import RESULTS_CSV
from ceco_fair.run import main
from ceco_fair.runner.protocol import parse_protocol
from ceco_fair.training.epoch import Progress
from ceco_fair.training.hooks import Checkpointer
from ceco_fair.training.loop import MethodConfig, MethodModel, OptimizerConfig, TrainConfig, pretrain
from ceco_fair.training.staged import CorrectNContrast

CPU = torch.device("cpu")


def cnc_reference(features: torch.Tensor, labels: torch.Tensor, predictions: torch.Tensor, tau: float) -> torch.Tensor:
    """CnC's contrastive loss, one anchor at a time in float64, from Zhang et al. (2022), eq. 2.

    For anchor ``i``: positives ``P`` = same class, other stage-one prediction; negatives ``N`` = other class,
    same prediction; ``ℓ(i) = −(1/|P|) Σ_{p ∈ P} log( exp(s_ip) / (Σ_{p' ∈ P} exp(s_ip') + Σ_{n ∈ N} exp(s_in)) )``,
    ``s = cos / τ``; the mean over anchors with a positive (0 if none has one).
    """
    z = features.double() / features.double().norm(dim=1, keepdim=True)
    m = len(z)
    losses = []
    for i in range(m):
        pos = [p for p in range(m) if labels[p] == labels[i] and predictions[p] != predictions[i]]
        neg = [k for k in range(m) if labels[k] != labels[i] and predictions[k] == predictions[i]]
        if not pos:
            continue
        logits = {k: z[i] @ z[k] / tau for k in pos + neg}
        # log(exp(s_ip) / Σ_k exp(s_ik)) in log space: exp(s) and its square overflow for tiny τ
        log_denominator = torch.logsumexp(torch.stack([logits[k] for k in pos + neg]), dim=0)
        losses.append(-sum(logits[p] - log_denominator for p in pos) / len(pos))
    return torch.stack(losses).mean() if losses else z.sum() * 0.0


def batch(n: int = 14, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features of several scales, three classes, and predictions that are right for about half of them."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=generator, dtype=torch.float64) * (
        torch.rand(n, 1, generator=generator) + 0.2
    )
    labels = torch.randint(0, 3, (n,), generator=generator)
    wrong = torch.rand(n, generator=generator) < 0.5
    predictions = torch.where(wrong, torch.randint(0, 3, (n,), generator=generator), labels)
    labels[-1], predictions[-1] = 3, 3  # a class of one sample: no positive, skipped
    return features, labels, predictions


@pytest.mark.parametrize(("temperature", "block_size"), [(0.05, None), (0.5, 3), (0.002, 4)])
@pytest.mark.parametrize("anchors", ["all", "reversed"])
@pytest.mark.parametrize("ranges", [{}, {"n_classes": 4, "n_groups": 4}])
def test_loss_and_gradient_equal_the_per_anchor_loop_of_the_paper(
    temperature: float, block_size: int | None, anchors: str, ranges: dict[str, int]
) -> None:
    features, labels, predictions = batch(seed=int(temperature * 1000))
    leaf = features.clone().requires_grad_(True)
    loss = CnCLoss(temperature=temperature, block_size=block_size)
    rows = None if anchors == "all" else torch.arange(len(labels)).flip(0)  # tiles or row blocks
    value = loss.combine(loss.partial_sums(leaf[:, None], labels, predictions, anchor_rows=rows, **ranges))
    (grad,) = torch.autograd.grad(value, leaf)
    reference_leaf = features.clone().requires_grad_(True)
    expected = cnc_reference(reference_leaf, labels, predictions, temperature)
    (expected_grad,) = torch.autograd.grad(expected, reference_leaf)
    assert value.dtype == torch.float64
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_default_temperature_is_the_authors_and_unscaled() -> None:
    loss = CnCLoss()
    assert (loss.temperature, loss.base_temperature) == (0.05, 0.05)
    features, labels, predictions = batch(seed=3)
    expected = cnc_reference(features, labels, predictions, 0.05)
    torch.testing.assert_close(loss(features[:, None], labels, predictions), expected, rtol=1e-12, atol=1e-12)


# Hand-made batch: (class, stage-one prediction) of each sample.
CLASSES = [0, 0, 0, 1, 1, 2, 1]
PREDICTED = [0, 0, 1, 0, 1, 2, 1]
POSITIVES = {0: {2}, 1: {2}, 2: {0, 1}, 3: {4, 6}, 4: {3}, 5: set(), 6: {3}}
"""Same class, predicted otherwise."""
NEGATIVES = {0: {3}, 1: {3}, 2: {4, 6}, 3: {0, 1}, 4: {2}, 5: set(), 6: {2}}
"""Another class, predicted alike (sample 5 is alone in its class and its prediction)."""


def test_masks_of_a_hand_made_batch() -> None:
    """Each anchor's loss reads exactly itself, its positives and its negatives, and equals the equation on them."""
    features = torch.randn(7, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels, predictions = torch.tensor(CLASSES), torch.tensor(PREDICTED)
    tau = 0.3
    loss = CnCLoss(temperature=tau)
    z = features / features.norm(dim=1, keepdim=True)
    for anchor in range(7):
        leaf = features.clone().requires_grad_(True)
        (part,) = loss.partial_sums(leaf[:, None], labels, predictions, anchor_rows=torch.tensor([anchor]))
        if not POSITIVES[anchor]:
            assert int(part.n_valid) == 0 and part.loss_sum.item() == 0
            continue
        assert int(part.n_valid) == 1
        (grad,) = torch.autograd.grad(part.loss_sum, leaf)
        read = {k for k in range(7) if grad[k].abs().sum() > 0}
        assert read == {anchor} | POSITIVES[anchor] | NEGATIVES[anchor], anchor
        logits = {k: float(z[anchor] @ z[k]) / tau for k in POSITIVES[anchor] | NEGATIVES[anchor]}
        log_denominator = math.log(sum(math.exp(v) for v in logits.values()))
        expected = -sum(logits[p] - log_denominator for p in POSITIVES[anchor]) / len(POSITIVES[anchor])
        assert part.loss_sum.item() == pytest.approx(expected, rel=1e-12)
    total = loss(features[:, None], labels, predictions)
    torch.testing.assert_close(total, cnc_reference(features, labels, predictions, tau), rtol=1e-12, atol=0)


def test_no_positive_anywhere_is_a_differentiable_zero() -> None:
    features = torch.randn(4, 1, 3, dtype=torch.float64, requires_grad=True)
    value = CnCLoss()(features, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))  # every prediction right
    value.backward()
    assert value.item() == 0 and features.grad is not None and not features.grad.isnan().any()


def objective(n: int = 24, **options: Any) -> tuple[CorrectNContrast, torch.nn.Module, dict[str, torch.Tensor]]:
    targets = torch.arange(n) % 3
    model = torch.nn.Linear(2, 2)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    full = CorrectNContrast.check_options({"stage_one_epochs": 2, **options}, "m")
    made = CorrectNContrast(**full).bind(targets, torch.zeros(n, dtype=torch.long), 3, 1, CPU, model)
    return made, model, initial


def test_stage_one_predictions_become_the_pseudo_groups_and_the_model_restarts() -> None:
    made, model, initial = objective()
    assert made.stage(0, 5) == (0, 2) and made.stage(1, 5) == (0, 2) and made.stage(2, 5) == (2, 3)
    assert made.state_dict()["stage"] == 1
    predictions = made.targets.clone()
    predictions[[1, 4, 7, 8]] = (predictions[[1, 4, 7, 8]] + 1) % 3
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not made.end_epoch(model, 0, lambda m: predictions)
    assert made.end_epoch(model, 1, lambda m: predictions)
    for key, value in model.state_dict().items():
        assert torch.equal(value, initial[key])
    state = made.state_dict()
    assert state["stage"] == 2 and torch.equal(state["predictions"], predictions) and state["initial"] is None
    assert not made.end_epoch(model, 2, lambda m: predictions)  # restarts once


def test_stage_two_draws_every_class_prediction_cell_equally_often() -> None:
    made, model, _ = objective(n=60)
    assert torch.equal(torch.sort(made.order(0, torch.Generator().manual_seed(0))).values, torch.arange(60))
    predictions = made.targets.clone()
    predictions[:5] = (predictions[:5] + 1) % 3  # five small cells beside the three large ones
    made.end_epoch(model, 1, lambda m: predictions)
    cells = (made.targets * 3 + predictions).tolist()
    k = len(set(cells))
    expected = torch.tensor([1 / (k * cells.count(c)) for c in cells], dtype=torch.float64)
    torch.testing.assert_close(made.probabilities(), expected, rtol=1e-12, atol=0)
    draws = torch.cat([made.order(2 + e, torch.Generator().manual_seed(e)) for e in range(300)])
    share = torch.bincount(torch.tensor(cells)[draws], minlength=9).double() / len(draws)
    for cell in set(cells):
        assert share[cell].item() == pytest.approx(1 / k, abs=0.01)


@pytest.mark.parametrize("lambda_ce", [0.5, 0.2])
def test_stage_losses_are_cross_entropy_then_the_weighted_sum(lambda_ce: float) -> None:
    made, model, _ = objective(lambda_ce=lambda_ce, temperature=0.1)
    generator = torch.Generator().manual_seed(2)
    index = torch.randperm(24, generator=generator)[:10]
    projected = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    logits = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    targets = made.targets[index]
    cross_entropy = torch.nn.functional.cross_entropy(logits, targets)
    stage_one = made.batch_loss((projected.float(), logits.float()), targets, index)
    assert stage_one.item() == pytest.approx(cross_entropy.item(), rel=1e-6)
    predictions = (made.targets + (torch.arange(24) % 4 == 0).long()) % 3
    made.end_epoch(model, 1, lambda m: predictions)
    expected = lambda_ce * cross_entropy + (1 - lambda_ce) * cnc_reference(projected, targets, predictions[index], 0.1)
    stage_two = made.batch_loss((projected.float(), logits.float()), targets, index)
    assert stage_two.item() == pytest.approx(expected.item(), rel=1e-5)


# ------------------------------------------------------------------ resume


class Interrupt(Exception):
    """Stands for a process killed right after a checkpoint."""


def train(path: Path, *, resume: bool = False) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    method = MethodConfig("cnc", CorrectNContrast.check_options({"stage_one_epochs": 1, "temperature": 0.1}, "m"))
    torch.manual_seed(0)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
    config = TrainConfig(epochs=3, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), max_batches_per_epoch=2)
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


@pytest.mark.parametrize("killed_after", [1, 2])  # at the restart, inside stage two
def test_resume_after_a_kill_ends_bit_for_bit_like_an_uninterrupted_run(
    killed_after: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_history, whole = train(tmp_path / "whole.pt")
    real_save = state_module.save_checkpoint

    def save_then_die(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        if state["epoch"] == killed_after:
            raise Interrupt

    monkeypatch.setattr(state_module, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupt):
        train(tmp_path / "cut.pt")
    monkeypatch.setattr(state_module, "save_checkpoint", real_save)
    saved = torch.load(tmp_path / "cut.pt", weights_only=True)["objective"]
    assert saved["stage"] == 2 and saved["predictions"].shape == (64,) and saved["initial"] is None
    resumed_history, resumed = train(tmp_path / "cut.pt", resume=True)
    assert [row["loss"] for row in resumed_history] == [row["loss"] for row in whole_history]
    assert {key for key in whole if key.startswith("head.")}, "cnc trains a projection head"
    for key, value in whole.items():
        assert torch.equal(value, resumed[key]), key


# ------------------------------------------------------------------ two gloo processes

WORLD, N_LOCAL, N_TRAIN = 2, 6, 20


def distributed_data() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Training classes, stage-one predictions and two global batches: indices, projections, logits."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 3, (N_TRAIN,), generator=generator)
    wrong = torch.rand(N_TRAIN, generator=generator) < 0.4
    predictions = torch.where(wrong, (targets + 1) % 3, targets)
    indices = [torch.randperm(N_TRAIN, generator=generator)[: WORLD * N_LOCAL] for _ in range(2)]
    projected = [torch.randn(WORLD * N_LOCAL, 4, generator=generator) for _ in range(2)]
    logits = [torch.randn(WORLD * N_LOCAL, 3, generator=generator) for _ in range(2)]
    return targets, predictions, indices, projected, logits


def stage_two_steps(rows: slice) -> list[dict[str, torch.Tensor]]:
    """Two stage-two steps of a CnC objective on the ``rows`` of each global batch: loss, gradients, counts."""
    targets, predictions, indices, projected, logits = distributed_data()
    made = CorrectNContrast(temperature=0.2, lambda_ce=0.3).bind(targets, torch.zeros_like(targets), 3, 1, CPU)
    made.load_state_dict({"stage": 2, "predictions": predictions, "initial": None})
    results = []
    for index, step_projected, step_logits in zip(indices, projected, logits, strict=True):
        mine_projected = step_projected[rows].clone().requires_grad_(True)
        mine_logits = step_logits[rows].clone().requires_grad_(True)
        value = made.batch_loss((mine_projected, mine_logits), targets[index[rows]], index[rows])
        value.backward()
        assert mine_projected.grad is not None and mine_logits.grad is not None
        results.append(
            {
                "value": value.detach(),
                "projected": mine_projected.grad,
                "logits": mine_logits.grad,
                "anchors": made.anchors.clone(),
            }
        )
    return results


def _worker(rank: int, port: int, folder: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    torch.save(stage_two_steps(slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)), Path(folder) / f"cnc-{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_give_the_loss_and_gradients_of_one_process_on_the_global_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    parts = [torch.load(tmp_path / f"cnc-{rank}.pt", weights_only=True) for rank in range(WORLD)]
    expected = stage_two_steps(slice(None))
    assert all(int(step["anchors"][0]) > 0 for step in expected)  # the batches hold positives
    for step, wanted in enumerate(expected):
        value = sum(part[step]["value"] for part in parts) / WORLD  # the loop's mean over processes
        torch.testing.assert_close(value, wanted["value"], rtol=1e-5, atol=1e-6)
        for rank, part in enumerate(parts):
            rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
            # DistributedDataParallel averages the processes' gradients: each local one is WORLD × its share.
            for key in ("projected", "logits"):
                torch.testing.assert_close(part[step][key] / WORLD, wanted[key][rows], rtol=1e-5, atol=1e-7)
            assert torch.equal(part[step]["anchors"], wanted["anchors"])  # global counts on every process


# ------------------------------------------------------------------ protocol


def test_the_protocol_accepts_cnc_with_its_options() -> None:
    raw = tiny_protocol_dict(
        methods=[{"name": "cnc", "lambda_ce": 0.5, "temperature": 0.05, "stage_one_epochs": 2}], train={"epochs": 3}
    )
    protocol = parse_protocol(raw, check_data=False)
    config = protocol.methods[0].config
    assert dict(config.options) == {"lambda_ce": 0.5, "temperature": 0.05, "stage_one_epochs": 2}
    assert config.method_class is CorrectNContrast and config.method_class.n_views == 1
    parts = config.build().model_parts(torch.nn.Identity(), 4, 3, 2)
    assert parts.head is not None and parts.classifier is not None and parts.extra is None
    assert CorrectNContrast.check_options({}, "m") == {"lambda_ce": 0.5, "temperature": 0.05, "stage_one_epochs": 1}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"lambda_ce": 1.5}, "methods[0].lambda_ce: expected a value in [0, 1], got 1.5"),
        ({"lambda_ce": -0.1}, "methods[0].lambda_ce: expected a value in [0, 1], got -0.1"),
        ({"lambda_ce": "high"}, "methods[0].lambda_ce: expected a number, got 'high'"),
        ({"temperature": 0}, "methods[0].temperature: expected a finite number > 0, got 0.0"),
        ({"temperature": float("inf")}, "methods[0].temperature: expected a finite number > 0, got inf"),
        ({"stage_one_epochs": 0}, "methods[0].stage_one_epochs: expected a positive integer, got 0"),
        ({"stage_one_epochs": 1.5}, "methods[0].stage_one_epochs: expected an integer, got 1.5"),
        ({"stage_one_epochs": 2}, "methods[0].stage_one_epochs: expected fewer than train.epochs (2), got 2"),
        (
            {"upweight": 3},
            "methods[0].upweight: unknown option of cnc; valid options: lambda_ce, temperature, stage_one_epochs",
        ),
    ],
)
def test_bad_options_are_one_error_line_with_exit_status_2(
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: dict[str, Any],
    expected: str,
) -> None:
    protocol = write_protocol(methods=[{"name": "cnc", **options}])
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and expected in error, error
    assert not output.exists()


def test_first_stage_must_leave_a_second() -> None:
    with pytest.raises(CecoFairError, match=r"m\.stage_one_epochs: expected fewer than train\.epochs \(3\)"):
        CorrectNContrast.check_epochs({"stage_one_epochs": 3}, 3, "m")
    CorrectNContrast.check_epochs({"stage_one_epochs": 2}, 3, "m")


def test_a_cnc_run_writes_three_readouts(write_protocol: Callable[..., Path], tmp_path: Path) -> None:
    protocol = write_protocol(
        methods=[{"name": "cnc", "stage_one_epochs": 1}], train={"epochs": 2}, eval={"projection_points": 50}
    )
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    table = pd.read_csv(output / RESULTS_CSV)
    assert set(table["readout"]) == {"linear", "balanced", "head"}
    log = (output / "run.log").read_text(encoding="utf-8")
    assert "misclassified after stage one" in log and "anchors had a positive in their batch" in log
