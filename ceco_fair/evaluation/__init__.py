"""Reading a frozen encoder.

Features and read-outs (``probe``), distortion diagnostics, per-epoch tracking, counterfactual
recolouring, and the public audit API (``auditing``).
"""
