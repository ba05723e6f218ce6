"""Unit tests of the signalling service's sans-I/O core."""
