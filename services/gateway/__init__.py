"""The single-server gateway: one public port in front of rooms, signalling and metrics.

`parley dev` and `parley serve` start it as a child process; it routes by path exactly as
the chart's Ingress does, so a browser sees one origin whatever its address.
"""

from services.gateway.routing import Route, RouteTable, forwarded_headers, is_websocket

__all__ = ["Route", "RouteTable", "forwarded_headers", "is_websocket"]
