"""The results folder, torch-free.

Its layout (every file name and column), the run record, the folder rebuild, paired comparisons
and the environment manifest.
"""
