#!/bin/bash
# protocols/selection.yaml as two shards into one folder; run it again to resume (--resume takes over dead claims).
# More processes may join the same folder at any time with --resume --shard K/N.
cd "$(dirname "$0")/.."
mkdir -p reports/selection
start=$(date +%s.%N)
for k in 1 2; do
  python -m ceco_fair.run protocols/selection.yaml --device cpu --output reports/selection/measured \
    --resume --shard $k/2 --quiet >> reports/selection/shard$k.log 2>&1 &
done
wait
end=$(date +%s.%N)
echo "wall=$(echo "$end - $start" | bc) s (this attempt)"
