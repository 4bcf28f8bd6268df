"""``make bench``: throughput, latency, memory and scaling of the pipeline on this machine.

Every figure is the median of several runs (with min and max), and every figure that matters is
a ratio against a baseline measured in the same run, because the machine is shared and noisy:

- ``producer_rate``: the producer against the simulator alone (CPU ceiling) and against the
  reference tutorial's produce-then-flush loop, on the same embedded broker;
- ``job_rate``: the streaming job draining a backlog (``--available-now``) against a Spark batch
  job (``batch_ceiling``) doing the same parse, validation and Iceberg appends on the same
  events in a warmed JVM; ``fleet_rate``: a 10,000-vehicle fleet's real-time event rate;
- ``latency``: event creation to Iceberg snapshot commit at fixed produce rates;
- ``memory``: peak RSS of the producer and of the job's driver;
- ``report``: the JSON, Markdown and PNG files under ``bench/results/``.

    python -m scripts.bench [--quick] [--out DIR]
"""
