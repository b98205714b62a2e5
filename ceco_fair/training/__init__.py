"""Pretraining: the loop, batches, determinism, torchrun, checkpoints, TensorBoard and user losses."""
