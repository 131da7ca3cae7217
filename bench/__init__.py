"""`make bench`: dccd against the emulator at realistic latency and the exchange's real
limits, side by side with ccxt. Never part of `make test`: timings need a quiet machine."""
