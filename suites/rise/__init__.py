"""RISEBench."""
