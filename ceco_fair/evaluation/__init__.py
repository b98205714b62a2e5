"""Reading a frozen encoder.

Features and read-outs (``probe``), the evaluation settings (``eval_config``), distortion diagnostics,
per-epoch tracking, counterfactual recolouring, the steps from features to an audit's tables
(``measure``: metric kind, probe metrics, projection) and the public audit API (``auditing``: ``audit``,
``audit_features``, ``AuditOptions``, ``AuditResult``).
"""
