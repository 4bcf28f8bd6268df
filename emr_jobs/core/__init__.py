"""The shared core: what the producer, the job and the operator scripts all need.

- ``contracts``: one contract per stream (fields, types, ranges, topics) and the lake layout;
- ``kafka``: Kafka settings and the options of Spark's Kafka source for every auth mode;
- ``settings``: the settings plumbing and the error a wrong setting raises;
- ``paths``: the repository root, for local defaults.

It imports nothing else from the project, and nothing outside the standard library, so the
producer can use it without Spark and the job ships it to EMR with the job package.
"""
