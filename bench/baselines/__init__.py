"""Reference services the benchmark defines itself: a naive Keras service and the framework ceiling.

Both are started by ``bench.run`` with uvicorn and read their settings from environment
variables, so they run the same way as the service under test.
"""
