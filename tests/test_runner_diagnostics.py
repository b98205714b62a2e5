"""Every protocol run writes the representation diagnostics (issue: measure the distortion itself)."""

import json

import pandas as pd
import pytest

from ceco_fair.run import main

DIAGNOSTICS = {
    "instance_retrieval",
    "instance_retrieval_within_cell",
    "alignment",
    "uniformity",
    "variance_ratio",
    "leakage",
    "leakage_within_class",
    "bias_sensitivity",
    "counterfactual_flip_rate",
}


@pytest.mark.parametrize("dataset", ["biased_mnist", "colored_mnist"])
def test_coloured_digit_runs_write_every_diagnostic(tmp_path, write_protocol, dataset):
    path = write_protocol(data={"dataset": dataset, "source": "embedded", "rho": [0.9]}, methods=[{"name": "supcon"}])
    assert main([str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert DIAGNOSTICS <= set(results.metric)
    values = results.set_index("metric")["value"]
    for name in DIAGNOSTICS - {"alignment", "uniformity"}:  # shares of images or of variance
        assert 0.0 <= values[name] <= 1.0, name
    assert 0.0 <= values["alignment"] <= 4.0  # squared distance of unit vectors
    assert -4.0 * 2 <= values["uniformity"] <= 0.0  # log of a mean of exp(-2 d²), d² <= 4
    assert_features_diagnostics_recompute(tmp_path / "out", dataset, values)
    # fewer candidates within a cell: every image retrieved among all is retrieved within its cell
    assert values["instance_retrieval_within_cell"] >= values["instance_retrieval"]
    n_colours = 10 if dataset == "biased_mnist" else 2
    assert values["leakage"] > 1.0 / n_colours  # the colour is in the pixels: above chance
    run_dir = next((tmp_path / "out" / "runs").iterdir())
    table = pd.read_csv(run_dir / "counterfactual.csv")
    assert len(table) == 1000 * n_colours and set(table.colour) == set(range(n_colours))
    flips = (
        table.prediction.to_numpy().reshape(-1, n_colours)
        != pd.read_csv(run_dir / "predictions.csv").prediction.to_numpy()[:, None]
    )
    assert flips.mean() == pytest.approx(values["counterfactual_flip_rate"])
    strip = json.loads((run_dir / "counterfactual_strip.json").read_text())
    assert len(strip["images"]) == n_colours and len(strip["predictions"]) == n_colours
    assert len(strip["images"][0]) == 28 and len(strip["images"][0][0][0]) == 3


def assert_features_diagnostics_recompute(output, dataset, values):
    """The diagnostics of the plain test features, recomputed from the saved encoder, equal the recorded ones.

    The ranges above hold for any plausible value; these do not (the test split has 1,000 images, under
    the subsample size, so every diagnostic reads all of them).
    """
    import numpy as np
    import torch

    from ceco_fair import load_encoder
    from ceco_fair.data import build_dataset
    from ceco_fair.data.augment import AugmentConfig
    from ceco_fair.evaluation.probe import extract_features
    from ceco_fair.metrics import leakage, uniformity, variance_ratio

    run_dir = next((output / "runs").iterdir())
    test = build_dataset(dataset, "test", source="embedded", seed=0)
    features = extract_features(
        load_encoder(run_dir), test, device=torch.device("cpu"), normalization=AugmentConfig(), progress=False
    )
    targets, sensitive = features.targets.numpy(), features.sensitive.numpy()
    assert len(targets) == 1000
    assert values["variance_ratio"] == pytest.approx(variance_ratio(features.features, targets), abs=1e-5)
    assert values["uniformity"] == pytest.approx(uniformity(features.features), abs=1e-5)
    assert values["leakage"] == pytest.approx(leakage(features.features, sensitive, seed=0), abs=1e-3)
    within = leakage(features.features, sensitive, np.asarray(targets), seed=0)
    assert values["leakage_within_class"] == pytest.approx(within, abs=1e-3)
