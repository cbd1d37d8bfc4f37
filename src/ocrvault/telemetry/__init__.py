"""What an operator watches: Prometheus metrics (metrics.py), OpenTelemetry traces
(tracing.py). Neither carries document content, tenant names, key ids, job ids or file
names: labels and span attributes are counts, times, route templates, engine names and
error codes only. Structured logs are in ``ocrvault/logs.py``.
"""
