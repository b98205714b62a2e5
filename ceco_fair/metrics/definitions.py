"""What each metric computes: its definition, naming whose variant it is where the field has several.

The one place a definition is written; :data:`~ceco_fair.metrics.specs.METRIC_SPECS` gives each spec its
``variant`` from here, and README's metric reference is generated from the specs
(:mod:`ceco_fair.metrics.reference`). Torch-free, no imports.
"""

from __future__ import annotations

from typing import Final

DEFINITIONS: Final[dict[str, str]] = {
    "unbiased_accuracy": "mean over the (class, bias value) cells present of the cell accuracy (LfF's, BiasCon's)",
    "bias_conflicting_accuracy": "accuracy on test samples whose bias value is not their class's aligned value",
    "bias_aligned_accuracy": "accuracy on test samples whose bias value is their class's aligned value",
    "accuracy": "share of test samples predicted correctly",
    "worst_group_accuracy": (
        "min over the (target, sensitive) cells present of the cell accuracy (group DRO's worst group)"
    ),
    "demographic_parity_difference": "max − min over groups of the selection rate P(ŷ = 1 | s) (fairlearn's)",
    "equalized_odds_difference": (
        "max of the TPR spread and the FPR spread over groups (fairlearn's agg='worst_case')"
    ),
    "equal_opportunity_difference": "max − min over groups of the TPR (fairlearn's)",
    "eo_fscl": "mean over target classes of the mean absolute accuracy gap over group pairs (FSCL's EO)",
    "auroc": "AUROC: Mann-Whitney with midranks (ties ½); C > 2 classes: one-vs-rest macro mean",
    "worst_group_auroc": "AUROC: Mann-Whitney with midranks (ties ½); C > 2 classes: one-vs-rest macro mean",
    "auroc_gap": "AUROC: Mann-Whitney with midranks (ties ½); C > 2 classes: one-vs-rest macro mean",
    "ece": "ECE: top-label, 10 equal-width bins on [0, 1] (confidence 1 in the last)",
    "ece_gap": "ECE: top-label, 10 equal-width bins on [0, 1] (confidence 1 in the last)",
    "score_gap": "max − min over groups of the mean positive-class score (FFB's DPE)",
    "score_gap_eo": "the score gap within each true class, max over the classes (FFB's DPE, EO form)",
    "abcc": "area between the groups' CDFs of the positive-class score (Wasserstein-1); largest pair",
    "equalized_odds_sum": "TPR spread + FPR spread (FFB's equalized odds)",
    "average_odds_difference": "(TPR spread + FPR spread) / 2 (fairlearn's equalized_odds_difference, agg='mean')",
    "adjusted_accuracy": "unweighted mean accuracy over the (target, sensitive) cells present",
    "train_weighted_accuracy": "cell accuracies weighted by the training split's (target, sensitive) shares",
    "knn_accuracy": "per epoch: accuracy of a kNN classifier on a random training bank",
    "knn_bias_conflicting_accuracy": "per epoch: bias-conflicting accuracy of the kNN classifier, random bank",
    "knn_worst_group_accuracy": "per epoch: worst-group accuracy of the kNN classifier, random bank",
    "balanced_knn_accuracy": "per epoch: kNN accuracy with a bank balanced over (target, sensitive) cells",
    "balanced_knn_bias_conflicting_accuracy": "per epoch: bias-conflicting kNN accuracy, balanced bank",
    "balanced_knn_worst_group_accuracy": "per epoch: worst-group kNN accuracy, balanced bank",
    "instance_retrieval": "share of test images whose other augmented view is the nearest neighbour among all views",
    "instance_retrieval_within_cell": "instance retrieval among the views of the same (target, sensitive) cell only",
    "alignment": "mean squared distance between the L2-normalised views of each sample (Wang & Isola)",
    "uniformity": "log of the mean of exp(−t‖z_i − z_j‖²) over pairs, t = 2 (Wang & Isola; lower is more uniform)",
    "variance_ratio": (
        "within-class share of the total variance of the L2-normalised features (0: every class collapsed)"
    ),
    "leakage": "balanced accuracy of a cross-validated linear probe predicting the sensitive value",
    "leakage_within_class": "leakage of the sensitive value within each target class, averaged over classes",
    "bias_sensitivity": (
        "share of the variance of features of each digit re-rendered on every colour that the colour explains"
    ),
    "counterfactual_flip_rate": (
        "share of test digits whose prediction changes when only the background colour changes"
    ),
}
