"""bench/sfu: the SFU under real RTP (python -m bench.sfu)."""
