#!/usr/bin/env bash
# The GPU measurements in one run (a few minutes on one GPU): two-view SimpleConvNet / small_conv
# pretraining images/s with the share of step time outside the model and the host synchronisations
# inside a step, every loss's speed, memory and host synchronisations, then feature extraction from
# JPEG files against the decoded-image cache held on the GPU (20,000 generated CelebA-layout images).
# Run from the repository root with the package installed: bash benchmarks/gpu_checks.sh
set -euo pipefail
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible')"
python benchmarks/train_throughput.py --device cuda --archs simple_conv small_conv --steps 20
python benchmarks/loss_speed.py --device cuda --sizes 1024 4096 --repeats 9
python benchmarks/image_cache.py --device cuda --workers 8 --arch load small_conv resnet18 --repeats 2
