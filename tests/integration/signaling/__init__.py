"""Integration tests of signalling: real replicas, NATS and Redis."""
