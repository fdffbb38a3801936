"""Speed benchmarks for recon; `python -m benchmarks` runs them all and prints one JSON document.

Each ``bench_*.py`` module exposes ``run(quick: bool) -> dict`` and prints its
own JSON document when run as a script (``python -m benchmarks.bench_decoder``).
"""
