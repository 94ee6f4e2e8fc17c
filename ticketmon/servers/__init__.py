"""Real Prometheus, Alertmanager, Pushgateway and PostgreSQL processes on loopback.

The main job, the tests and the benchmarks all start these servers the same way:
free 127.0.0.1 ports, temporary storage, and a clean stop.
"""
