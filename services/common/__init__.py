"""Code every Parley service shares: settings, bus, subjects and messages, Redis, tokens,
TURN credentials, PII-free logging, telemetry, metrics, and the diagnostic-log writer."""

__all__: list[str] = []
