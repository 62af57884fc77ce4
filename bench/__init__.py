"""Load benchmark of the digit service against a naive baseline and the framework ceiling.

Run ``python -m bench.run --help``. The command starts each service itself on 127.0.0.1, drives
it with ``wrk`` and writes ``docs/benchmark.json``, ``docs/benchmark.md`` and
``docs/benchmark.png``. Nothing here is imported by the service.
"""
