"""Parley's Grafana dashboards: their definitions (`spec`), the PromQL helpers the tests and
the renderer share (`promql`), a throwaway Prometheus (`prom`), a short load (`load`) and
the PNG renderer (`render`)."""
