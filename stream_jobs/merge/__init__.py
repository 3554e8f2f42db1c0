"""Stage 2 of the aggregation: per-partition window partials merged per (model, window)."""
