"""Reading a frozen encoder.

The feature reader (``features``), the probe (``probe``), the read-out registry (``readouts``), the checked
inputs of a measurement (``inputs``), the evaluation settings (``eval_config``), distortion diagnostics,
per-epoch tracking, counterfactual recolouring, the steps from features to an audit's tables
(``measure``: metric kind, probe metrics, projection) and the public audit API (``auditing``: ``audit``,
``audit_features``, ``AuditOptions``, ``AuditResult``, and the one pipeline ``evaluate_encoder`` / ``measure``).
"""
