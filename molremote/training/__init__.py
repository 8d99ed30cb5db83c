"""The training loop (imports torch; only `train` and friends import this package)."""
