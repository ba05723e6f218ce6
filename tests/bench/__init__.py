"""The benches in CI: their pure parts, and a short run of each (they must not rot)."""
