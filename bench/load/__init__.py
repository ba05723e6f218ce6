"""Load benchmark: joins/s of the rooms API and websocket connects/s of signalling."""
