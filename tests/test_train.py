"""Training loop pieces: schedule, deterministic epochs, method losses."""

from __future__ import annotations

import math

import pytest
import torch

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.losses import BiasConLoss
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.loop import (
    MethodConfig,
    MethodModel,
    OptimizerConfig,
    TrainConfig,
    TrainingDiverged,
    TrainingStep,
    build_method_loss,
    build_optimizer,
    cosine_lr,
    pretrain,
    training_loss,
)


def test_cosine_schedule_with_warmup() -> None:
    assert cosine_lr(1.0, 0, 100, 10) == pytest.approx(0.1)
    assert cosine_lr(1.0, 9, 100, 10) == pytest.approx(1.0)
    assert cosine_lr(1.0, 10, 100, 10) == pytest.approx(1.0)
    assert cosine_lr(1.0, 55, 100, 10) == pytest.approx(0.5)
    assert cosine_lr(1.0, 100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(2.0, 30, 60, 0) == pytest.approx(1.0)


class TinyImages(torch.utils.data.Dataset[tuple[torch.Tensor, int, int]]):
    """64 random RGB images with 4 classes and 2 groups, held in memory."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (64, 3, 12, 12), dtype=torch.uint8, generator=generator)
        self.targets = torch.arange(64) % 4
        self.sensitive = torch.arange(64) % 2
        self.n_classes = 4
        self.n_groups = 2

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.images[index], int(self.targets[index]), int(self.sensitive[index])


def train_once(
    method: MethodConfig, epochs: int
) -> tuple[list[dict[str, float]], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Train a fresh model; returns the history, the encoder's weights before and the model's after."""
    torch.manual_seed(0)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
    before = {key: value.clone() for key, value in model.encoder.state_dict().items()}
    config = TrainConfig(epochs=epochs, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), augment=AugmentConfig())
    history = pretrain(model, method, TinyImages(), config, seed=0, device=torch.device("cpu"), progress=False)
    return history, before, model.state_dict()


TWO_STAGES = {"stage_one_epochs": 1}
"""JTT's and CnC's first stage: one of the two epochs."""


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("ce", {}),
        ("simclr", {}),
        ("supcon", {}),
        ("contex", {}),
        ("fscl", {}),
        ("biascon", {}),
        ("groupdro", {}),
        ("reweight", {}),
        ("resample", {}),
        ("jtt", TWO_STAGES),
        ("lff", {}),
        ("cnc", TWO_STAGES),
    ],
)
def test_every_method_trains_and_is_deterministic(name: str, options: dict[str, int]) -> None:
    method = MethodConfig(name, loss_kwargs=options, projection_dim=8)
    first, before, state_a = train_once(method, 2)
    second, _, state_b = train_once(method, 2)
    assert [r["loss"] for r in first] == [r["loss"] for r in second]
    assert all(math.isfinite(r["loss"]) for r in first) and len(first) == 2
    for key in state_a:
        torch.testing.assert_close(state_a[key], state_b[key], rtol=0, atol=0)
    weights = [key for key in before if key.endswith("weight")]
    assert weights
    unchanged = [key for key in weights if torch.equal(before[key], state_a[f"encoder.{key}"])]
    assert unchanged == [], f"{name} left the encoder's {unchanged} as initialised: the optimiser never stepped"


def test_training_loss_turns_non_finite_features_into_a_non_finite_loss() -> None:
    loss = build_method_loss(MethodConfig("contex"))
    assert loss is not None
    features = torch.randn(4, 2, 8)
    features[1, 0, 3] = float("nan")
    value = loss(features, torch.tensor([0, 1, 0, 1]), torch.zeros(4, dtype=torch.long))
    assert not torch.isfinite(value)


def test_model_that_diverges_stops_with_training_diverged() -> None:
    method = MethodConfig("supcon", projection_dim=8)
    torch.manual_seed(0)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
    config = TrainConfig(epochs=3, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), augment=AugmentConfig())

    def train() -> None:
        pretrain(model, method, TinyImages(), config, seed=0, device=torch.device("cpu"), progress=False)

    train()
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match=r"nan|inf"):
        train()


@pytest.mark.parametrize(
    ("name", "optimizer"), [("ce", "sgd"), ("contex", "adam"), ("fscl", "adamw"), ("biascon", "sgd")]
)
def test_training_step_reads_nothing_back_to_the_host(name: str, optimizer: str) -> None:
    """Augmentation, forward, loss, backward, clipping and the optimiser step run on the meta device.

    Meta tensors hold no values, so any read back to the host (``.item()``, ``float()``, a
    data-dependent branch or shape, ``torch.unique``) fails there; on a GPU each would stall the
    step. The loss's own check of this can fail (see ``test_meta_device_detects_reads_back``).
    """
    method = MethodConfig(name, projection_dim=8)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=10).to("meta")
    config = TrainConfig(grad_clip=1.0, optimizer=OptimizerConfig(name=optimizer), augment=AugmentConfig(hflip=True))
    loss = build_method_loss(method, n_classes=10, n_groups=10)
    step = TrainingStep(model, method, loss, build_optimizer(model, config.optimizer), config, torch.device("meta"))
    images = torch.empty(16, 3, 28, 28, dtype=torch.uint8, device="meta")
    ids = torch.empty(16, dtype=torch.int64, device="meta")
    views = step.views(images, None)
    value = step.update(views, ids, ids, lr=1e-3)
    assert len(views) == (1 if name == "ce" else 2)
    assert value.device.type == "meta" and value.shape == () and not value.requires_grad


def test_known_dataset_sizes_train_like_compacted_ids() -> None:
    """pretrain hands the dataset's n_classes / n_groups to the loss; the history matches unknown sizes."""
    method = MethodConfig("fscl", projection_dim=8)
    histories = []
    for loss in (None, build_method_loss(method)):
        torch.manual_seed(0)
        model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
        config = TrainConfig(epochs=2, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), augment=AugmentConfig())
        histories.append(
            pretrain(
                model,
                method,
                TinyImages(),
                config,
                seed=0,
                device=torch.device("cpu"),
                contrastive_loss=loss,
                progress=False,
            )
        )
    sized, compacted = ([row["loss"] for row in history] for history in histories)
    assert sized == pytest.approx(compacted, rel=1e-5)


def test_each_loss_owns_its_auxiliary_cross_entropy_default() -> None:
    assert MethodConfig("biascon").cross_entropy_weight == pytest.approx(BiasConLoss.default_ce_weight) == 0.01
    assert MethodConfig("biascon", ce_weight=0.0).cross_entropy_weight == 0.0
    assert MethodConfig("supcon").cross_entropy_weight == 0.0
    assert MethodConfig("supcon", ce_weight=0.5).cross_entropy_weight == 0.5
    with_head = MethodModel(build_encoder("small_conv", feature_dim=8), MethodConfig("biascon"), n_classes=4)
    without = MethodModel(build_encoder("small_conv", feature_dim=8), MethodConfig("supcon"), n_classes=4)
    assert with_head.classifier is not None and without.classifier is None


def test_biascon_step_adds_its_default_cross_entropy() -> None:
    """One BiasCon step's loss is the BiasCon loss plus 0.01 x the cross-entropy of the head."""
    torch.manual_seed(0)
    method = MethodConfig("biascon", projection_dim=8)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
    data = TinyImages()
    views = [data.images[:8].float() / 255, data.images[8:16].float() / 255]
    targets, sensitive = data.targets[:8], data.sensitive[:8]
    loss = build_method_loss(method, n_classes=4, n_groups=2)
    assert loss is not None
    total = training_loss(model, method, loss, views, targets, sensitive)
    projected, logits = model(torch.cat(views))
    assert projected is not None and logits is not None
    contrastive = BiasConLoss()(projected.view(2, 8, -1).transpose(0, 1), targets, sensitive)
    expected = contrastive + 0.01 * torch.nn.functional.cross_entropy(logits[:8], targets)
    torch.testing.assert_close(total, expected)
