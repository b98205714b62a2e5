"""ceco_fair: measure and reduce bias in learned image representations.

Train encoders with the context-enriched contrastive loss (ConTeX) and its baselines, measure
bias-conflicting accuracy and group fairness, audit any encoder, and read the results in an
interactive HTML report.

The heavy parts (torch models, datasets) load on first use, so ``python -m ceco_fair.report``
starts quickly.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from ceco_fair.common.lazy import lazy_exports
from ceco_fair.errors import CecoFairError, DataError, ProtocolError

if TYPE_CHECKING:
    from ceco_fair.evaluation.auditing import AuditOptions, AuditResult, audit, audit_features
    from ceco_fair.evaluation.readouts import Readout, ReadoutInputs, register_readout
    from ceco_fair.models.files import load_encoder
    from ceco_fair.results.selection import select
    from ceco_fair.training.method import Method, ModelParts, OptionError
    from ceco_fair.training.methods import register_method

try:
    __version__ = metadata.version("ceco_fair")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_LAZY = {
    "AuditOptions": "ceco_fair.evaluation.auditing",
    "AuditResult": "ceco_fair.evaluation.auditing",
    "audit": "ceco_fair.evaluation.auditing",
    "audit_features": "ceco_fair.evaluation.auditing",
    "load_encoder": "ceco_fair.models.files",
    "Readout": "ceco_fair.evaluation.readouts",
    "ReadoutInputs": "ceco_fair.evaluation.readouts",
    "register_readout": "ceco_fair.evaluation.readouts",
    "select": "ceco_fair.results.selection",
    "Method": "ceco_fair.training.method",
    "ModelParts": "ceco_fair.training.method",
    "OptionError": "ceco_fair.training.method",
    "register_method": "ceco_fair.training.methods",
}

__all__ = [
    "AuditOptions",
    "AuditResult",
    "CecoFairError",
    "DataError",
    "Method",
    "ModelParts",
    "OptionError",
    "ProtocolError",
    "Readout",
    "ReadoutInputs",
    "__version__",
    "audit",
    "audit_features",
    "load_encoder",
    "register_method",
    "register_readout",
    "select",
]


__getattr__ = lazy_exports(__name__, _LAZY)
