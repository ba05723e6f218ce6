"""bench/metrics: beacons through ingest → JetStream → aggregate (`python -m bench.metrics.run`)."""
