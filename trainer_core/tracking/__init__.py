"""Where runs are recorded: the metrics store and the meaning of its rows. A leaf: imports nothing of
the engine but ``errors``.

- ``status``: ``RunStatus``, progress and ETA of a run row, which metrics are better when lower, which
  series are resource samples (``system/...``) rather than metrics.
- ``store``: ``MetricsStore``, runs, metric points and events in one database shared by every process
  (a SQLite file, or a PostgreSQL database shared by several machines).
- ``schema``: the tables, their version (``PRAGMA user_version``) and the migrations applied at open,
  and the damage check that turns a broken file into ``StoreDamagedError``.
- ``series``: the reads of metric series (downsampled from the rollups, last and best points).
- ``rollups``: the per-bucket min/max tables that make long series cheap to downsample.
- ``claims``: who owns a run (attempts, workers, outcomes) and claims of runs and slots, each one
  transaction on both backends.
- ``backends``: what differs between SQLite and PostgreSQL; ``postgres``: connecting to PostgreSQL, its
  types and its schema version table (psycopg is imported only for a ``postgresql://`` URL).
"""
