"""`python -m molremote ...` (what torchrun and remote launchers run)."""

from .cli import main

main()
