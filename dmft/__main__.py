"""`python -m dmft` runs the command line (where the `dmft` script is not on PATH)."""

from .cli import main

main()
