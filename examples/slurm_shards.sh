#!/bin/bash
# One protocol's grid as a SLURM job array: array task i runs shard i+1 of N into one shared folder.
#
#   sbatch --array=0-7 examples/slurm_shards.sh protocols/celeba.yaml /shared/reports/celeba
#
# Every task writes its runs' folders and rebuilds results.csv, results.json, comparisons.csv
# (and report.html) from all finished runs, so the task that ends last leaves the complete tables.
# A task that was killed or requeued continues where it stopped: --resume takes over its runs' claims
# and their checkpoints. `python -m ceco_fair.report FOLDER` shows the state at any time.
#SBATCH --job-name=ceco-fair
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail

protocol=${1:?usage: sbatch --array=0-N examples/slurm_shards.sh PROTOCOL.yaml OUTPUT_DIR}
output=${2:?usage: sbatch --array=0-N examples/slurm_shards.sh PROTOCOL.yaml OUTPUT_DIR}
shard="$((SLURM_ARRAY_TASK_ID + 1))/${SLURM_ARRAY_TASK_COUNT}"

# --resume: harmless on a first start, and a requeued task picks up its own claims and checkpoints.
python -m ceco_fair.run "$protocol" --output "$output" --shard "$shard" --resume --quiet

# Several GPUs per task: keep the data-parallel run inside the shard, e.g.
#   torchrun --nproc_per_node 4 -m ceco_fair.run "$protocol" --output "$output" --shard "$shard" --resume
