import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from ceco_fair.evaluation.tracking import balanced_subsample, knn_predict


def test_knn_matches_sklearn_cosine_majority_vote():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(300, 8))
    labels = rng.integers(0, 4, size=300)
    queries = rng.normal(size=(120, 8))
    for k in (1, 5, 20):
        reference = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(bank, labels)
        ours = knn_predict(torch.from_numpy(bank), torch.from_numpy(labels), torch.from_numpy(queries), k)
        assert (ours.numpy() == reference.predict(queries)).all()


def test_knn_tie_goes_to_the_smaller_class_and_k_is_capped():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([3, 1])
    assert knn_predict(bank, labels, torch.tensor([[1.0, 0.0]]), k=20).tolist() == [1]
    assert knn_predict(bank, labels, torch.tensor([[1.0, 0.01]]), k=1).tolist() == [3]


def test_tracked_run_writes_one_curve_row_per_epoch(tmp_path, write_protocol):
    from ceco_fair.run import main

    path = write_protocol(eval={"n_boot": 0, "projection_points": 100, "track_every": 1, "track_points": 200})
    assert main([str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    for method in ("ce", "contex"):
        run_dir = tmp_path / "out" / "runs" / f"{method}-rho0.99-seed0"
        curves = pd.read_csv(run_dir / "curves.csv")
        assert curves["epoch"].tolist() == [1, 2]
        assert list(curves.columns) == [
            "epoch",
            "knn_accuracy",
            "knn_bias_conflicting_accuracy",
            "balanced_knn_accuracy",
            "balanced_knn_bias_conflicting_accuracy",
            "instance_retrieval_within_cell",
            "variance_ratio",
        ]
        assert curves.drop(columns="epoch").apply(lambda c: c.between(0, 1)).all().all()
        history = pd.read_csv(run_dir / "history.csv")
        assert "knn_accuracy" not in history.columns and "track_seconds" in history.columns
        assert_last_epoch_recomputes(run_dir, curves.iloc[-1])


def assert_last_epoch_recomputes(run_dir, last):
    """The last curve row is the trained encoder's (tracked after the update), each bank in its own column."""
    from ceco_fair import load_encoder
    from ceco_fair.data import build_dataset
    from ceco_fair.data.augment import AugmentConfig
    from ceco_fair.evaluation.probe import extract_features
    from ceco_fair.evaluation.tracking import EpochTracker

    train = build_dataset("biased_mnist", "train", source="embedded", rho=0.99, seed=0)
    test = build_dataset("biased_mnist", "test", source="embedded", seed=0)
    encoder, device, augment = load_encoder(run_dir), torch.device("cpu"), AugmentConfig()
    tracker = EpochTracker(train, test, kind="bias", augment=augment, seed=0, device=device, points=200, batch_size=512)
    again = tracker(encoder)
    assert set(again) == set(last.index) - {"epoch"}
    for name, value in again.items():
        assert value == pytest.approx(last[name], abs=1e-6), name
    queries = extract_features(
        encoder, test, device=device, normalization=augment, progress=False, indices=tracker.query_rows
    )
    for column, rows in (("knn_accuracy", tracker.bank_rows), ("balanced_knn_accuracy", tracker.balanced_rows)):
        bank = extract_features(encoder, train, device=device, normalization=augment, progress=False, indices=rows)
        predicted = knn_predict(bank.features, bank.targets, queries.features)
        assert float((predicted == queries.targets).float().mean()) == pytest.approx(last[column], abs=1e-6)


def test_balanced_subsample_draws_equally_from_every_present_cell():
    targets = torch.tensor([0] * 50 + [0] * 3 + [1] * 20 + [2] * 40)
    sensitive = torch.tensor([0] * 50 + [1] * 3 + [1] * 20 + [0] * 40)
    rows = balanced_subsample(targets, sensitive, points=40, generator=torch.Generator().manual_seed(0))
    assert rows.tolist() == sorted(set(rows.tolist()))
    cells = [(int(targets[r]), int(sensitive[r])) for r in rows]
    counts = {cell: cells.count(cell) for cell in set(cells)}
    # four cells present, quota 40 // 4 = 10; the (0, 1) cell has only three rows and gives them all
    assert counts == {(0, 0): 10, (0, 1): 3, (1, 1): 10, (2, 0): 10}
    again = balanced_subsample(targets, sensitive, points=40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rows, again)


def test_balanced_bank_reads_the_shape_that_a_biased_bank_hides():
    """Features = (3 x colour one-hot, shape one-hot): a biased bank votes by colour, a balanced one by shape."""
    n = 4
    cells = [(d, d) for d in range(n) for _ in range(95)]  # aligned: 95 per digit on its own colour
    cells += [(d, c) for d in range(n) for c in range(n) if c != d for _ in range(2)]  # 2 per conflicting cell
    digits = torch.tensor([d for d, _ in cells])
    colours = torch.tensor([c for _, c in cells])

    def features(d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.eye(n)[c] * 3.0, torch.eye(n)[d]], dim=1)

    test_digits = torch.arange(n).repeat_interleave(n)
    test_colours = torch.arange(n).repeat(n)
    queries = features(test_digits, test_colours)
    conflicting = test_digits != test_colours
    biased = knn_predict(features(digits, colours), digits, queries, k=20)
    assert (biased[conflicting] == test_colours[conflicting]).all()  # the colour's digit wins every vote
    rows = balanced_subsample(digits, colours, points=32, generator=torch.Generator().manual_seed(0))
    assert len(rows) == 32  # 2 rows from each of the 16 cells
    # neighbours of (d, c): its own cell (2, similarity 1), its colour (6 of other digits, 0.9), its digit (6, 0.1)
    balanced = knn_predict(features(digits[rows], colours[rows]), digits[rows], queries, k=14)
    assert (balanced == test_digits).all()
