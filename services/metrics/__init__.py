"""Metrics: anonymous usage beacons in, k-anonymous browser-bug reports out."""

from services.metrics.schema import Beacon, BeaconRecord, ClientInfo, beacon_json_schema

__all__: list[str] = ["Beacon", "BeaconRecord", "ClientInfo", "beacon_json_schema"]
