"""Prometheus metrics with Centrifugo's names: the families (``families``), the text exposition
(``text``) and the ``/metrics`` endpoint with the HTTP request counter (``endpoint``).

See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""
