"""Allow ``python -m opencharacter``."""

from opencharacter.cli import main

main()
