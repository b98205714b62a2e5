"""Tests of ceco_fair.losses against the slow float64 reference, PML, and edge cases."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from loss_reference import reference_loss
from pytorch_metric_learning.losses import NTXentLoss
from pytorch_metric_learning.losses import SupConLoss as PMLSupConLoss
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from ceco_fair.errors import CecoFairError
from ceco_fair.losses import (
    LOSSES,
    BiasConLoss,
    ConTeXLoss,
    FSCLLoss,
    SimCLRLoss,
    SupConLoss,
    Term,
    build_loss,
    infonce_terms,
)
from ceco_fair.losses.blockwise import masked_logsumexp
from ceco_fair.losses.problem import (
    BlockProblem,
    ClampedTerm,
    Denominator,
    PositiveMatch,
    unshifted_limit,
)

NAMES = ("simclr", "supcon", "contex", "fscl", "biascon")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: one CPU thread avoids BLAS thread hand-offs that dominate tiny matmuls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(
    n: int, v: int, d: int = 6, *, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor, Tensor]:
    """Features of non-unit scale, imbalanced labels (one singleton class), two groups."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(n, v, 1, generator=gen, dtype=torch.float64) * 5 + 0.1
    x = (torch.randn(n, v, d, generator=gen, dtype=torch.float64) * scale).to(dtype)
    weights = torch.tensor([0.5, 0.25, 0.15, 0.1])
    y = torch.multinomial(weights, n, replacement=True, generator=gen)
    y[-1] = 7  # a class with a single image
    s = torch.randint(0, 2, (n,), generator=gen)
    y[:3], s[:3] = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0])  # every loss has valid anchors
    return x, y, s


def value_and_grad(name: str, x: Tensor, y: Tensor | None, s: Tensor | None, **kwargs: Any) -> tuple[Tensor, Tensor]:
    leaf = x.detach().clone().requires_grad_()
    value = build_loss(name, **kwargs)(leaf, y, s)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def reference_value_and_grad(
    name: str, x: Tensor, y: Tensor | None, s: Tensor | None, **kwargs: Any
) -> tuple[Tensor, Tensor]:
    leaf = x.detach().to(torch.float64).clone().requires_grad_()
    value = reference_loss(name, leaf, y, s, **kwargs)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def assert_close(actual: Tensor, expected: Tensor, rtol: float, atol: float) -> None:
    torch.testing.assert_close(actual.to(expected.dtype), expected, rtol=rtol, atol=atol)


def extra_kwargs(name: str, variant: bool) -> dict[str, Any]:
    if name == "contex" and variant:
        return {"clamp": True}
    if name == "fscl" and variant:
        return {"group_norm": True}
    return {}


# ------------------------------------------------------------------ reference comparisons


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("views", [1, 2, 4])
@pytest.mark.parametrize(("temperature", "block_size"), [(0.05, 3), (0.1, None), (0.5, 4)])
def test_matches_reference_float64(name: str, views: int, temperature: float, block_size: int | None) -> None:
    if views < LOSSES[name].min_views:
        return
    x, y, s = batch(9, views, seed=views + int(temperature * 100))
    ours, grad = value_and_grad(name, x, y, s, temperature=temperature, block_size=block_size)
    ref, ref_grad = reference_value_and_grad(name, x, y, s, temperature=temperature)
    assert ours.dtype == torch.float64
    assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["contex", "fscl"])
@pytest.mark.parametrize("block_size", [None, 4, 64])
@pytest.mark.parametrize("temperature", [0.1, 0.003])
def test_variants_match_reference(name: str, block_size: int | None, temperature: float) -> None:
    """contex clamp=True and fscl group_norm=True, on both numerical paths."""
    x, y, s = batch(11, 2, seed=3)
    kwargs = extra_kwargs(name, True)
    ours, grad = value_and_grad(name, x, y, s, temperature=temperature, block_size=block_size, **kwargs)
    ref, ref_grad = reference_value_and_grad(name, x, y, s, temperature=temperature, **kwargs)
    assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_clamp_changes_the_value_when_a_log_ratio_is_positive() -> None:
    x, y, _ = batch(10, 2, seed=5)
    clamped = reference_loss("contex", x, y, clamp=True)
    unclamped = reference_loss("contex", x, y)
    # min(0, ·) only lowers log-ratios, so it raises the loss where one is positive.
    assert clamped > unclamped + 1e-3
    assert_close(build_loss("contex", clamp=True)(x, y), clamped, rtol=1e-10, atol=1e-12)


def test_shifted_path_is_used_and_exact_for_tiny_temperature() -> None:
    """1/τ beyond the unshifted range: one shifted exponential pass per denominator."""
    temperature = 0.002
    assert 1 / temperature > unshifted_limit(torch.float64)
    x, y, s = batch(12, 2, seed=8)
    for name in NAMES:
        ours, grad = value_and_grad(name, x, y, s, temperature=temperature)
        ref, ref_grad = reference_value_and_grad(name, x, y, s, temperature=temperature)
        assert math.isfinite(float(ours))
        assert_close(ours, ref, rtol=1e-10, atol=1e-10)
        assert_close(grad, ref_grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("temperature", [0.1, 0.02])
def test_float32_matches_reference(name: str, temperature: float) -> None:
    x, y, s = batch(12, 2, seed=11, dtype=torch.float32)
    ours, grad = value_and_grad(name, x, y, s, temperature=temperature)
    ref, ref_grad = reference_value_and_grad(name, x, y, s, temperature=temperature)
    assert ours.dtype == torch.float32
    assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5 * float(ref_grad.abs().max()))


@pytest.mark.parametrize("temperature", [0.1, 0.002])
def test_many_labels_and_cells(temperature: float) -> None:
    """36 (label, sensitive) cells, blocks of 8 anchors, both numerical paths."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(36, 2, 4, generator=gen, dtype=torch.float64)
    y = torch.arange(36) % 18
    s = torch.arange(36) // 18  # 36 (label, sensitive) cells
    for name in ("contex", "fscl", "biascon"):
        for kwargs in ({}, extra_kwargs(name, True)):
            ours, grad = value_and_grad(name, x, y, s, block_size=8, temperature=temperature, **kwargs)
            ref, ref_grad = reference_value_and_grad(name, x, y, s, temperature=temperature, **kwargs)
            assert_close(ours, ref, rtol=1e-10, atol=1e-10)
            assert_close(grad, ref_grad, rtol=1e-9, atol=1e-10)


def test_arbitrary_label_values() -> None:
    x, y, s = batch(10, 2, seed=6)
    shifted = build_loss("fscl")(x, y * 1000 - 5, s + 40)
    assert_close(shifted, build_loss("fscl")(x, y, s), rtol=1e-12, atol=1e-12)


VARIANTS = [(name, {}) for name in NAMES] + [("contex", {"clamp": True}), ("fscl", {"group_norm": True})]


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
@pytest.mark.parametrize(("n_classes", "n_groups"), [(8, 2), (8, 5), (600, 3)])
@pytest.mark.parametrize("temperature", [0.1, 0.002])
def test_known_id_ranges_match_reference(
    name: str, kwargs: dict[str, bool], n_classes: int, n_groups: int, temperature: float
) -> None:
    """Ids used as indices of fixed-size tables: empty classes and groups count 0.

    The batch has labels {0, 1, 2, 3, 7} and groups {0, 1}: with (8, 5) classes 4-6 and groups 2-4
    are empty cells of the grid; 600 x 3 pairs exceed the grid bound and only present pairs get a cell.
    """
    x, y, s = batch(12, 2, seed=21)
    leaf = x.clone().requires_grad_()
    ours = build_loss(name, temperature=temperature, block_size=5, **kwargs)(
        leaf, y, s, n_classes=n_classes, n_groups=n_groups
    )
    (grad,) = torch.autograd.grad(ours, leaf)
    ref, ref_grad = reference_value_and_grad(name, x, y, s, temperature=temperature, **kwargs)
    assert_close(ours.detach(), ref, rtol=1e-10, atol=1e-10)
    assert_close(grad, ref_grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
@pytest.mark.parametrize("temperature", [0.1, 0.002])
def test_known_id_ranges_read_nothing_back(name: str, kwargs: dict[str, bool], temperature: float) -> None:
    """With known ranges and value checks off, forward and backward run on the meta device.

    Meta tensors hold no values: any op that reads data back to the host (``torch.unique``,
    ``.item()``, ``bincount``, a data-dependent branch) fails there, and on a GPU each of those would
    be a host synchronisation per training step. Every kernel path is covered: symmetric tiles,
    row blocks (slice and index anchors), the shifted pass of a tiny temperature, clamping.
    """
    loss = build_loss(name, temperature=temperature, block_size=8, **kwargs)
    loss.check_values = False
    features = torch.empty(24, 2, 16, device="meta", requires_grad=True)
    labels = torch.empty(24, dtype=torch.int64, device="meta")
    sensitive = torch.empty(24, dtype=torch.int64, device="meta")
    for anchor_rows in (None, slice(16, 32), torch.arange(10, 20, device="meta")):
        sums = loss.partial_sums(features, labels, sensitive, anchor_rows=anchor_rows, n_classes=10, n_groups=10)
        value = loss.combine(sums)
        (grad,) = torch.autograd.grad(value, features)
        assert value.shape == () and grad.shape == features.shape


def test_meta_device_detects_reads_back() -> None:
    """The check above can fail: unknown ranges compact ids with ``torch.unique``, which meta refuses."""
    loss = build_loss("supcon")
    loss.check_values = False
    features = torch.empty(8, 2, 4, device="meta")
    with pytest.raises(NotImplementedError, match="unique"):
        loss(features, torch.empty(8, dtype=torch.int64, device="meta"))


def test_masked_logsumexp_gradcheck() -> None:
    """The custom autograd function against finite differences, every path at once."""
    gen = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(9, 3, generator=gen, dtype=torch.float64))
    cell = torch.tensor([0, 2, 0, 1, 1, 2, 0, 2, 2])
    other = Denominator(differ=torch.arange(3))
    anchors = torch.tensor([7, 0, 3, 4, 8])
    for inv_tau, block in ((2.0, 2), (400.0, 4)):
        problem = BlockProblem(
            anchor_pos=anchors,
            anchors_are_keys=False,
            anchor_cell=cell[anchors],
            key_cell=cell,
            n_cells=3,
            denominators=(Denominator(), other),
            clamped=(ClampedTerm(1, PositiveMatch(cell, cell[anchors])),),
            inv_temperature=inv_tau,
            block_size=block,
        )
        leaf = keys.clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda k, p=problem: masked_logsumexp(k, p), (leaf,))


@pytest.mark.parametrize("name", NAMES)
def test_tile_and_row_kernels_agree(name: str) -> None:
    """Anchors = all keys in order use symmetric tiles; any other anchor order uses row blocks."""
    x, y, s = batch(13, 2, seed=17)
    loss = LOSSES[name](block_size=4)
    leaf = x.clone().requires_grad_()
    tiles = loss.combine(loss.partial_sums(leaf, y, s))
    (tile_grad,) = torch.autograd.grad(tiles, leaf)
    reversed_rows = torch.arange(26).flip(0)
    rows = loss.combine(loss.partial_sums(leaf, y, s, anchor_rows=reversed_rows))
    (row_grad,) = torch.autograd.grad(rows, leaf)
    assert_close(tiles, rows, rtol=1e-12, atol=1e-12)
    assert_close(tile_grad, row_grad, rtol=1e-10, atol=1e-12)


def test_tiles_gradcheck() -> None:
    gen = torch.Generator().manual_seed(1)
    keys = torch.nn.functional.normalize(torch.randn(7, 3, generator=gen, dtype=torch.float64))
    cell = torch.tensor([0, 2, 0, 1, 1, 2, 0])
    other = Denominator(differ=torch.tensor([0, 1, 1]), same=torch.tensor([0, 0, 1]))
    problem = BlockProblem(
        anchor_pos=torch.arange(7),
        anchors_are_keys=True,
        anchor_cell=cell,
        key_cell=cell,
        n_cells=3,
        denominators=(Denominator(), other),
        clamped=(),
        inv_temperature=2.0,
        block_size=3,
    )
    leaf = keys.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda k: masked_logsumexp(k, problem), (leaf,))


# ------------------------------------------------------------------ pytorch-metric-learning


def test_supcon_matches_pml() -> None:
    """PML SupConLoss on the flattened [N·V, D] rows, labels repeated per view.

    Both use, per anchor i, −mean_{p ∈ P(i)} [s_ip − log Σ_{k ≠ i} exp(s_ik)] (positives in
    the denominator, same temperature). PML reduces per anchor (reduction type "element")
    with AvgNonZeroReducer: the mean over anchors whose loss is non-zero, i.e. over anchors
    with at least one positive, which are exactly our valid anchors. PML has no τ/τ_base
    factor, so ours = (τ/τ_base) · PML.
    """
    x, y, _ = batch(10, 3, seed=2)
    n, v, d = x.shape
    tau, base = 0.2, 0.07
    ours, grad = value_and_grad("supcon", x, y, None, temperature=tau, base_temperature=base)
    leaf = x.detach().clone().requires_grad_()
    pml = PMLSupConLoss(temperature=tau)(leaf.reshape(n * v, d), y.repeat_interleave(v))
    (pml_grad,) = torch.autograd.grad(pml * (tau / base), leaf)
    assert_close(ours, pml.detach() * (tau / base), rtol=1e-9, atol=1e-12)
    assert_close(grad, pml_grad, rtol=1e-7, atol=1e-12)


def test_simclr_matches_pml_ntxent_with_two_views() -> None:
    """PML NTXentLoss with each image's id as its label, V = 2.

    PML's NT-Xent is per positive pair (a, p): −log(exp(s_ap) / (exp(s_ap) + Σ_{n: other
    label} exp(s_an))), averaged over pairs (MeanReducer). With two views every anchor has
    exactly one positive, so its denominator is every k ≠ a and there is one pair per
    anchor: the pair mean is our anchor mean. (With V > 2 PML leaves the other positives out of
    each pair's denominator and the two differ.) PML has no τ/τ_base factor.
    """
    x, _, _ = batch(8, 2, seed=4)
    n, v, d = x.shape
    tau, base = 0.1, 0.07
    ours, grad = value_and_grad("simclr", x, None, None, temperature=tau)
    leaf = x.detach().clone().requires_grad_()
    ids = torch.arange(n).repeat_interleave(v)
    pml = NTXentLoss(temperature=tau)(leaf.reshape(n * v, d), ids)
    (pml_grad,) = torch.autograd.grad(pml * (tau / base), leaf)
    assert_close(ours, pml.detach() * (tau / base), rtol=1e-9, atol=1e-12)
    assert_close(grad, pml_grad, rtol=1e-7, atol=1e-12)


# ------------------------------------------------------------------ edge cases


def test_singleton_class_anchor_is_skipped() -> None:
    x = torch.randn(3, 1, 4, dtype=torch.float64)
    y = torch.tensor([0, 0, 1])
    full = build_loss("supcon")(x, y)
    z = torch.nn.functional.normalize(x[:, 0], dim=1)
    s = z @ z.T / 0.1
    anchor = [torch.logsumexp(s[i, [1 - i, 2]], 0) - s[i, 1 - i] for i in (0, 1)]
    assert_close(full, (anchor[0] + anchor[1]) / 2 * (0.1 / 0.07), rtol=1e-12, atol=1e-12)


def test_contex_with_one_label_is_its_self_part() -> None:
    """Every sample has one label: L_a has no valid anchor, contex = (τ/τ_base)·λ_b·L_b."""
    x, _, _ = batch(7, 2, seed=9)
    y = torch.zeros(7, dtype=torch.long)
    value, grad = value_and_grad("contex", x, y, None)
    simclr, simclr_grad = value_and_grad("simclr", x, None, None)
    assert_close(value, 0.5 * simclr, rtol=1e-12, atol=1e-12)
    assert_close(grad, 0.5 * simclr_grad, rtol=1e-10, atol=1e-12)
    terms = ConTeXLoss().partial_sums(x, y)
    assert int(terms[0].n_valid) == 0 and int(terms[1].n_valid) == 14


def test_contex_anchor_without_other_label_counts_for_self_part_only() -> None:
    """Weights λ_a = 1, λ_b = 0 isolate L_a; each part averages over its own valid anchors."""
    x, _, _ = batch(6, 2, seed=1)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    only_a = build_loss("contex", label_weight=1.0, self_weight=0.0)(x, y)
    ref_a = reference_loss("contex", x, y, label_weight=1.0, self_weight=0.0)
    assert_close(only_a, ref_a, rtol=1e-10, atol=1e-12)


def test_fscl_with_one_sensitive_group_is_contex_label_part() -> None:
    """One sensitive value: D = other labels, as ConTeX's L_a (λ_a = 1, λ_b = 0)."""
    x, y, _ = batch(9, 2, seed=12)
    s = torch.zeros(9, dtype=torch.long)
    fscl, fscl_grad = value_and_grad("fscl", x, y, s)
    label_part, label_grad = value_and_grad("contex", x, y, None, label_weight=1.0, self_weight=0)
    assert_close(fscl, label_part, rtol=1e-12, atol=1e-12)
    assert_close(fscl_grad, label_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "labels", "sensitive"),
    [
        ("supcon", [0, 1, 2, 3], None),  # every class a singleton, V = 1
        ("fscl", [0, 0, 0, 0], [0, 1, 0, 1]),  # no other label: empty denominators
        ("fscl", [0, 0, 1, 1], [0, 0, 1, 1]),  # other labels only in the other group
        ("biascon", [0, 0, 1, 1], [0, 0, 1, 1]),  # no same-label other-bias positive
    ],
)
def test_no_valid_anchor_is_a_differentiable_zero(name: str, labels: list[int], sensitive: list[int] | None) -> None:
    x = torch.randn(4, 1, 5, requires_grad=True)
    s = torch.tensor(sensitive) if sensitive is not None else None
    value = build_loss(name)(x, torch.tensor(labels), s)
    value.backward()
    assert value.item() == 0.0
    assert x.grad is not None
    assert torch.isfinite(x.grad).all() and (x.grad == 0).all()


def test_single_row_batches() -> None:
    x = torch.randn(1, 1, 3, requires_grad=True)
    value = build_loss("supcon")(x, torch.tensor([0]))
    value.backward()
    assert value.item() == 0.0 and x.grad is not None and (x.grad == 0).all()
    pair = torch.randn(1, 2, 3, dtype=torch.float64)
    # One image, two views: L_b = −log(exp(s_01)/exp(s_01)) = 0 for each anchor.
    assert abs(float(build_loss("contex")(pair, torch.tensor([4])))) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_inputs(dtype: torch.dtype, name: str) -> None:
    x, y, s = batch(12, 2, d=16, seed=13, dtype=torch.float32)
    low = x.to(dtype).requires_grad_()
    value = build_loss(name)(low, y, s)
    value.backward()
    ref, ref_grad = value_and_grad(name, low.detach().float(), y, s)
    assert value.dtype == torch.float32
    assert low.grad is not None and low.grad.dtype == dtype
    assert_close(value, ref, rtol=1e-5, atol=1e-5)
    tol = 2e-2 * float(ref_grad.abs().max())
    torch.testing.assert_close(low.grad.float(), ref_grad, rtol=2e-2, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_follows_the_input_device(device: str) -> None:
    x, y, s = batch(6, 2, seed=0, dtype=torch.float32)
    value = build_loss("contex")(x.to(device), y.to(device), s.to(device))
    assert value.device.type == device


# ------------------------------------------------------------------ anchor subsets


@pytest.mark.parametrize("name", NAMES)
def test_anchor_row_chunks_sum_to_the_full_loss(name: str) -> None:
    x, y, s = batch(10, 2, seed=14)
    loss = LOSSES[name](**extra_kwargs(name, True))
    leaf = x.clone().requires_grad_()
    full = loss(leaf, y, s)
    (full_grad,) = torch.autograd.grad(full, leaf)
    m = 20
    chunks = [slice(0, 7), slice(7, 8), slice(8, 15), slice(15, m)]
    parts = [loss.partial_sums(leaf, y, s, anchor_rows=rows) for rows in chunks]
    n_terms = len(parts[0])
    total_counts = [sum(int(p[t].n_valid) for p in parts) for t in range(n_terms)]
    full_sums = loss.partial_sums(leaf, y, s)
    assert total_counts == [int(t.n_valid) for t in full_sums]
    # Each process divides its sum by the global count; the sum over processes is the loss.
    per_process = []
    for part in parts:
        globally_counted = [type(t)(t.loss_sum, torch.tensor(total_counts[i])) for i, t in enumerate(part)]
        per_process.append(loss.combine(globally_counted))
    chunked = torch.stack(per_process).sum()
    (chunked_grad,) = torch.autograd.grad(chunked, leaf)
    assert_close(chunked, full.detach(), rtol=1e-12, atol=1e-12)
    assert_close(chunked_grad, full_grad, rtol=1e-10, atol=1e-12)


def test_anchor_rows_as_index_tensor_and_instance_ids() -> None:
    """Global image ids and an arbitrary set of anchor rows, as a distributed caller passes."""
    x, y, _ = batch(6, 2, seed=15)
    loss = ConTeXLoss()
    rows = torch.tensor([11, 0, 5, 6])
    ids = torch.arange(100, 106)
    sub = loss.partial_sums(x, y, instance_ids=ids, anchor_rows=rows)
    pieces = [loss.partial_sums(x, y, anchor_rows=slice(int(r), int(r) + 1)) for r in rows]
    for t in range(2):
        expected = torch.stack([p[t].loss_sum for p in pieces]).sum()
        assert_close(sub[t].loss_sum, expected, rtol=1e-12, atol=1e-12)


def test_engine_terms_share_one_pass() -> None:
    x, y, s = batch(8, 2, seed=16)
    keys = x.reshape(16, -1)
    ids = torch.arange(8).repeat_interleave(2)
    rows_y, rows_s = y.repeat_interleave(2), s.repeat_interleave(2)
    terms = [Term("label", "other_label_same_sensitive"), Term("label_other_sensitive", "all")]
    together = infonce_terms(keys, terms, temperature=0.1, instance_ids=ids, labels=rows_y, sensitive=rows_s)
    for term, joint in zip(terms, together, strict=True):
        (alone,) = infonce_terms(keys, [term], temperature=0.1, instance_ids=ids, labels=rows_y, sensitive=rows_s)
        assert_close(joint.loss_sum, alone.loss_sum, rtol=1e-12, atol=1e-12)


def test_memory_stays_below_a_dense_matrix() -> None:
    """One forward + backward never holds anything near an M × M matrix."""
    m_images, dim = 512, 16
    x = torch.randn(m_images, 2, dim, requires_grad=True)
    y = torch.randint(0, 10, (m_images,))
    loss = build_loss("contex", block_size=32)
    loss(x, y).backward()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss(x, y).backward()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    dense_matrix = (2 * m_images) ** 2 * 4
    assert 0 < peak < dense_matrix / 4


# ------------------------------------------------------------------ API and bad input


def test_registry_and_class_attributes() -> None:
    assert set(LOSSES) == {"simclr", "supcon", "contex", "ceco", "fscl", "biascon"}
    assert LOSSES["ceco"] is ConTeXLoss and isinstance(build_loss("ceco"), ConTeXLoss)
    expected = {
        SimCLRLoss: (False, False, 2),
        SupConLoss: (True, False, 1),
        ConTeXLoss: (True, False, 2),
        FSCLLoss: (True, True, 1),
        BiasConLoss: (True, True, 1),
    }
    for cls, (labels, sensitive, views) in expected.items():
        assert (cls.needs_labels, cls.needs_sensitive, cls.min_views) == (labels, sensitive, views)
    assert (BiasConLoss().temperature, BiasConLoss().base_temperature) == (0.07, 0.07)
    assert (SupConLoss().temperature, SupConLoss().base_temperature) == (0.1, 0.07)
    contex = build_loss("contex", temperature=0.2, clamp=True)
    assert isinstance(contex, ConTeXLoss) and contex.clamp and contex.temperature == 0.2
    assert (contex.label_weight, contex.self_weight) == (0.5, 0.5)


def test_simclr_ignores_labels() -> None:
    x, y, _ = batch(6, 2, seed=3)
    assert_close(build_loss("simclr")(x, y), build_loss("simclr")(x), rtol=0, atol=0)


def raises(match: str) -> Any:
    return pytest.raises(CecoFairError, match=match)


def test_bad_inputs_raise_one_line_value_errors() -> None:
    x, y, s = batch(4, 2, seed=0)
    cases = [
        (lambda: build_loss("nope"), "unknown loss name 'nope'; valid names: simclr, supcon"),
        (
            lambda: build_loss("supcon", temprature=0.1),
            "unknown argument 'temprature'.*temperature",
        ),
        (lambda: build_loss("supcon", clamp=True), "unknown argument 'clamp'"),
        (lambda: build_loss("supcon", temperature=0), "temperature must be a finite number > 0"),
        (lambda: build_loss("supcon", temperature=-1.0), "temperature"),
        (lambda: build_loss("supcon", temperature=math.nan), "temperature"),
        (lambda: build_loss("supcon", base_temperature=0.0), "base_temperature"),
        (lambda: build_loss("contex", label_weight=-1), "label_weight must be a finite number"),
        (lambda: build_loss("contex", clamp=1), "clamp must be True or False"),
        (lambda: build_loss("fscl", group_norm="yes"), "group_norm must be True or False"),
        (lambda: build_loss("supcon", block_size=0), "block_size"),
        (lambda: build_loss("supcon")(x[0], y), r"features must have shape \[N, V, D\]"),
        (lambda: build_loss("supcon")(x[None], y), r"features must have shape \[N, V, D\]"),
        (lambda: build_loss("supcon")(x[:, :, :0], y), r"N, V, D >= 1, got shape \(4, 2, 0\)"),
        (lambda: build_loss("supcon")(y, y), "features must be a floating-point tensor"),
        (
            lambda: build_loss("simclr")(x[:, :1]),
            r"features has V=1 views but simclr needs V >= 2, got shape \(4, 1, 6\)",
        ),
        (lambda: build_loss("contex")(x[:, :1], y), "contex needs V >= 2"),
        (
            lambda: build_loss("supcon")(x, y[:3]),
            r"labels must be an integer tensor of shape \[N\]",
        ),
        (lambda: build_loss("supcon")(x, y.double()), "labels must be an integer tensor"),
        (lambda: build_loss("supcon")(x), r"supcon needs labels: an integer tensor of shape \[N\]"),
        (lambda: build_loss("fscl")(x, y), "fscl needs sensitive"),
        (lambda: build_loss("biascon")(x, y), "biascon needs sensitive"),
        (lambda: build_loss("fscl")(x, y, s[:2]), "sensitive must be an integer tensor"),
        (lambda: build_loss("supcon")(x * math.nan, y), "features must be finite"),
        (lambda: build_loss("supcon")(x * math.inf, y), "features must be finite"),
        (
            lambda: build_loss("supcon").partial_sums(x, y, anchor_rows=torch.tensor([8])),
            r"integer tensor of distinct rows in \[0, 8\), got 1 rows in \[8, 8\]",
        ),
        (
            lambda: build_loss("supcon").partial_sums(x, y, anchor_rows=torch.zeros(300, 2)),
            r"got a tensor of shape \(300, 2\) and dtype torch.float32",
        ),
        (
            lambda: build_loss("supcon").partial_sums(x, y, anchor_rows=torch.tensor([1, 1])),
            r"distinct rows in \[0, 8\), got 2 rows in \[1, 1\]",
        ),
        (
            lambda: build_loss("supcon").partial_sums(x, y, anchor_rows=[0, 1]),  # type: ignore[arg-type]
            "got list",
        ),
        (
            lambda: build_loss("supcon").partial_sums(x, y, instance_ids=torch.arange(3)),
            "instance_ids must be an integer tensor",
        ),
        (
            lambda: build_loss("supcon")(x, y, n_classes=int(y.max())),
            rf"labels must lie in \[0, {int(y.max())}\) \(the given range\), found values in \[0, {int(y.max())}\]",
        ),
        (
            lambda: build_loss("fscl")(x, y, s - 1, n_groups=2),
            r"sensitive must lie in \[0, 2\) \(the given range\), found values in \[-1, 0\]",
        ),
        (lambda: build_loss("supcon")(x, y, n_classes=0), "n_classes must be an integer >= 1 or None, got 0"),
        (lambda: build_loss("fscl")(x, y, s, n_groups=2.0), "n_groups must be an integer >= 1 or None, got 2.0"),
    ]
    for call, match in cases:
        with raises(match) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert "\n" not in str(info.value)


def test_engine_bad_arguments() -> None:
    keys = torch.randn(6, 3)
    ids = torch.arange(6)
    with raises("keys must be a 2-D tensor"):
        infonce_terms(keys[None], [Term("instance", "all")], temperature=0.1, instance_ids=ids)
    with raises("labels is required by the 'label/all' rule of term 0"):
        infonce_terms(keys, [Term("label", "all")], temperature=0.1, instance_ids=ids)
    with raises("instance_ids must be a 1-D tensor of 6 integers"):
        infonce_terms(keys, [Term("instance", "all")], temperature=0.1, instance_ids=ids[:2])
    with raises("term 0: positives must be one of"):
        infonce_terms(keys, [Term("bad", "all")], temperature=0.1, instance_ids=ids)  # type: ignore[arg-type]
    with raises("group_norm needs positives 'label'"):
        infonce_terms(
            keys,
            [Term("instance", "all", group_norm=True)],
            temperature=0.1,
            instance_ids=ids,
            sensitive=ids,
        )
    with raises("temperature must be a finite number > 0"):
        infonce_terms(keys, [Term("instance", "all")], temperature=0.0, instance_ids=ids)
    with raises("terms must hold at least one Term"):
        infonce_terms(keys, [], temperature=0.1, instance_ids=ids)
