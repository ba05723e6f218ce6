"""Integration tests of services.common pieces on the session's real NATS."""
