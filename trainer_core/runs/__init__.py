"""Running a config: the launcher (start, supervise, stop, resume, delete), the worker process that
trains, the callback that records it, the pre-launch check, and the layout of a run's folder.
Builds on ``config``, ``data``, ``models`` and ``tracking``; nothing below imports it.
"""
