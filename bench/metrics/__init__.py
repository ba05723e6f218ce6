"""bench/metrics: beacons through ingest → JetStream → aggregate (run with `python -m bench.metrics.run`)."""
