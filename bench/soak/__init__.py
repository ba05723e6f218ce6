"""Soak benchmark: the dev stack under churning rooms for minutes; see `__main__`."""
