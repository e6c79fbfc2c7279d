"""What a sweep costs before it runs: the jobs of a grid, the rows and tokens of each job's training
mix, and the GPU-hours and wall time they take at a measured throughput (`python -m relevance.grid_cost`,
docs/scale.md)."""
