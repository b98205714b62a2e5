import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import KNeighborsClassifier

from ceco_fair.evaluation.tracking import knn_predict


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
            "instance_retrieval_within_cell",
            "variance_ratio",
        ]
        assert curves.drop(columns="epoch").apply(lambda c: c.between(0, 1)).all().all()
        history = pd.read_csv(run_dir / "history.csv")
        assert "knn_accuracy" not in history.columns and "track_seconds" in history.columns
