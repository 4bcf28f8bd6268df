"""The live operations dashboard: the fleet on a map, alerts, road conditions, pipeline health.

A FastAPI app served by uvicorn (``python -m scripts.dashboard``, ``make dashboard``):

- ``feeds``: one confluent-kafka consumer thread reads the live topics from their latest
  offsets into the in-memory ``state``;
- ``positions``: vehicle positions, coalesced to at most one per vehicle per
  ``DASHBOARD_COALESCE_SECONDS`` and sent only when they changed;
- ``health``: events per second and the job's lag from the broker's high watermarks and the
  job's checkpoint, event-time freshness and the quarantine rate from the Iceberg lake;
- ``app``: the page, its libraries (from npm, served from ``node_modules``), server-sent
  events to browsers, and history from the lake through ``scripts.lake``'s reader;
- ``demo``: ``--demo`` runs a broker, the seven topics, a real-time simulation and the
  streaming job beside the dashboard.
"""
