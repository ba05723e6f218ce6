"""Parley's SFU: forwards each participant's RTP to the others without decoding it.

`forwarding/` is the sans-I/O core (packets in, packets out); `ice.py`, `dtls.py`,
`sdp.py` are the protocol pieces of a PeerConnection; `transport.py` and `app.py` the
asyncio shell. The contract is docs/sfu.md.
"""
