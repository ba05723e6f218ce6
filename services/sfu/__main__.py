"""`python -m services.sfu`: the same as `parley sfu`."""

from services.sfu.cli import main

main()
