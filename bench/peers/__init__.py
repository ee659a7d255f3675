"""The designs that bench/bench_peers.py runs side by side: for each, a producer (`produce`) and a
worker (`work`) with a no-op processor, run as subprocesses (arq's in its own venv)."""
