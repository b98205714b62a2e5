"""Training loop pieces: schedule, deterministic epochs, method losses."""

from __future__ import annotations

import math

import pytest
import torch

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.losses import BiasConLoss
from ceco_fair.models.encoders import build_encoder
from ceco_fair.training.distributed import DistributedContext
from ceco_fair.training.epoch import Progress, TrainingStep
from ceco_fair.training.loop import (
    MethodConfig,
    MethodModel,
    OptimizerConfig,
    TrainConfig,
    TrainingDiverged,
    pretrain,
)
from ceco_fair.training.methods import METHODS, Contrastive
from ceco_fair.training.state import TrainState, build_optimizer, cosine_lr

QUIET = Progress(show=False)
TRAINING_METHODS = sorted(name for name, cls in METHODS.items() if cls.trains)


def contrastive(method: MethodConfig) -> Contrastive:
    """The method object of a contrastive method."""
    built = method.build()
    assert isinstance(built, Contrastive)
    return built


class Sizes:
    """What a method's ``start`` reads of a training split when it needs no labels: its size and id ranges."""

    def __init__(self, n: int, n_classes: int, n_groups: int) -> None:
        self.n, self.n_classes, self.n_groups = n, n_classes, n_groups

    def __len__(self) -> int:
        return self.n


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


def train_once(method: MethodConfig, epochs: int) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    """Train a fresh model; returns the history and the model's weights after."""
    torch.manual_seed(0)
    model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
    config = TrainConfig(epochs=epochs, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), augment=AugmentConfig())
    history = pretrain(model, method, TinyImages(), config, seed=0, device=torch.device("cpu"), progress=QUIET)
    return history, model.state_dict()


@pytest.mark.parametrize("name", TRAINING_METHODS)
def test_every_method_trains_and_is_deterministic(name: str) -> None:
    method = MethodConfig(name, projection_dim=8)
    torch.manual_seed(0)
    initial = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4).encoder.state_dict()
    first, state_a = train_once(method, 2)
    second, state_b = train_once(method, 2)
    assert [r["loss"] for r in first] == [r["loss"] for r in second]
    assert all(math.isfinite(r["loss"]) for r in first) and len(first) == 2
    for key in state_a:
        torch.testing.assert_close(state_a[key], state_b[key], rtol=0, atol=0)
    weights = [key for key, value in initial.items() if key.endswith("weight") and value.is_floating_point()]
    assert weights
    unchanged = [key for key in weights if torch.equal(initial[key], state_a[f"encoder.{key}"])]
    assert unchanged == [], f"{name} left the encoder's {unchanged} as initialised: the optimiser never stepped"


def test_training_loss_turns_non_finite_features_into_a_non_finite_loss() -> None:
    loss = contrastive(MethodConfig("contex")).contrastive_loss()
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
        pretrain(model, method, TinyImages(), config, seed=0, device=torch.device("cpu"), progress=QUIET)

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
    built = method.build()
    built.start(Sizes(16, 10, 10), model, torch.device("meta"), DistributedContext())
    state = TrainState(model, build_optimizer(model, config.optimizer), built, seed=0)
    step = TrainingStep(state, config, torch.device("meta"))
    images = torch.empty(16, 3, 28, 28, dtype=torch.uint8, device="meta")
    ids = torch.empty(16, dtype=torch.int64, device="meta")
    views = step.views(images, None)
    value = step.update(views, ids, ids, 1e-3, torch.arange(16))
    assert len(views) == (1 if name == "ce" else 2)
    assert value.device.type == "meta" and value.shape == () and not value.requires_grad


def test_known_dataset_sizes_train_like_compacted_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrain hands the dataset's n_classes / n_groups to the loss; the history matches unknown sizes."""
    fscl = METHODS["fscl"]
    assert issubclass(fscl, Contrastive)

    class Compacted(fscl):  # type: ignore[valid-type,misc]
        name = "fscl_compacted_ids"

        def start(self, dataset: object, model: torch.nn.Module, device: torch.device, context: object) -> None:
            super().start(dataset, model, device, context)
            self.compute = self.contrastive_loss()  # no sizes: the loss compacts the ids of each batch

    monkeypatch.setitem(METHODS, Compacted.name, Compacted)
    histories = []
    for name in ("fscl", Compacted.name):
        method = MethodConfig(name, projection_dim=8)
        torch.manual_seed(0)
        model = MethodModel(build_encoder("small_conv", feature_dim=8), method, n_classes=4)
        config = TrainConfig(epochs=2, batch_size=16, optimizer=OptimizerConfig(lr=1e-2), augment=AugmentConfig())
        histories.append(
            pretrain(model, method, TinyImages(), config, seed=0, device=torch.device("cpu"), progress=QUIET)
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
    built = contrastive(method)
    built.start(Sizes(64, 4, 2), model, torch.device("cpu"), DistributedContext())
    total = built.loss(model, views, targets, sensitive, torch.arange(8))
    projected, logits = model(torch.cat(views))
    assert projected is not None and logits is not None
    term = BiasConLoss()(projected.view(2, 8, -1).transpose(0, 1), targets, sensitive)
    expected = term + 0.01 * torch.nn.functional.cross_entropy(logits[:8], targets)
    torch.testing.assert_close(total, expected)
