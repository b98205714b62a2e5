"""ceco_fair: measure and reduce bias in learned image representations.

Train encoders with the context-enriched contrastive loss (ConTeX) and its baselines, measure
bias-conflicting accuracy and group fairness, audit any encoder, and read the results in an
interactive HTML report.
"""

from __future__ import annotations

from importlib import metadata

from ceco_fair.audit import AuditResult, audit, audit_features
from ceco_fair.errors import CecoFairError, DataError, ProtocolError

try:
    __version__ = metadata.version("ceco_fair")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["AuditResult", "CecoFairError", "DataError", "ProtocolError", "__version__", "audit", "audit_features"]
