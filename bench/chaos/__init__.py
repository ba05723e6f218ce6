"""`make chaos`: faults injected into real calls on the dev stack, with the time each takes
to heal (see docs/resilience.md and `python -m bench.chaos --help`)."""
