"""`python -m services` is `parley`."""

from services.cli import main

main()
