"""From a protocol file to run folders: the schema and its checks, the grid, one run, and shards."""
