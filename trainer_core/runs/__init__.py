"""Running a config. Builds on ``config``, ``data``, ``models`` and ``tracking``; nothing below imports it.

- ``launcher``: start, supervise, stop, resume, delete; each start an attempt claimed in one transaction.
- ``exits``: what a worker's exit says (alive? why it ended) for the run's error.
- ``annotations``: the rules for a run's note and tags.
- ``worker``: the process that trains one attempt (run_glue's order) and records how it ended.
- ``distributed``: runs over several processes: the command line (one worker, or torchrun), the rank, what
  all ranks agree on; ``agent``: torchrun's agent, recording the rank that failed a run.
- ``resources``: CPU, memory and GPU memory of a worker's process tree, sampled at each heartbeat.
- ``callback``: the ``TrainerCallback`` that writes every logged number, beats, and stops on request.
- ``preflight``: what must hold before a worker is spawned (checkpoint, tokenizer, data, lengths).
- ``folder``: ``RunFolder``, the one owner of a run folder's files; which checkpoints are complete.
- ``home``: the runs folder and its store, checked usable and consistent.
- ``rebuild``: the store recovered from the run folders when it is damaged or lost.
"""
