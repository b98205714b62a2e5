"""Torch-free helpers that every layer uses.

``io`` (atomic files and locks), ``config`` (coercion and key checks), ``user_code`` (importing and
calling user code).
"""
