"""Where runs are recorded: the metrics store and the meaning of its rows. A leaf: imports nothing of
the engine but ``errors``.

- ``status``: ``RunStatus``, progress and ETA of a run row, which metrics are better when lower.
- ``store``: ``MetricsStore``, runs, metric points and events in one database shared by every process.
- ``rollups``: the per-bucket min/max tables that make long series cheap to downsample.
"""
