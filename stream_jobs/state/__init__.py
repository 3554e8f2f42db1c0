"""Per-partition worker state: one versioned codec and the changelog it travels on."""
