"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user-fixable problem with a run's config, data or checkpoint.

    Args:
        field: the config field at fault (e.g. ``"learning_rate"``, ``"text_column"``), or ``None``
            when the problem is not tied to one field.
        message: what is wrong and what to do about it, in words a user can act on.
    """

    def __init__(self, field: str | None, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    def to_dict(self) -> dict:
        return {"field": self.field, "message": self.message}


class RunNotFoundError(KeyError):
    """No run with this id exists in the store."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r}")

    def __str__(self) -> str:
        return f"no run with id {self.run_id!r}"


class SweepNotFoundError(RunNotFoundError):
    """No sweep with this id exists in the store (a RunNotFoundError, so callers that report a missing
    run report a missing sweep the same way)."""

    def __str__(self) -> str:
        return f"no sweep with id {self.run_id!r}"


class RunStateError(RuntimeError):
    """The action is not possible in the run's current state (e.g. resuming a running run)."""


def caused_by(exc: BaseException, *types: type[BaseException]) -> bool:
    """Whether ``exc`` or an exception it was raised from is one of ``types``.

    transformers and datasets re-raise the Hub's typed errors (``RepositoryNotFoundError``...) as
    ``OSError`` or their own types ``from`` the original, so the type that says what went wrong is
    often one or two links down the chain. The chain is followed as Python prints a traceback: through
    ``__cause__``, and through ``__context__`` unless it was suppressed (``raise ... from None``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, types):
            return True
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


class StoreDamagedError(ConfigError):
    """The metrics store file is damaged, or it lost the runs whose folders are on disk.

    A ``ConfigError`` (with no field) so that every place that shows a user's mistake shows this too;
    the fix is the same everywhere: ``trainer-core rebuild-store``.

    Args:
        path: the database file.
        reason: what is wrong with it, e.g. ``"not a SQLite database"``.
    """

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(
            None,
            f"the metrics store {path} {reason}. Run `trainer-core rebuild-store` (or "
            "`python -m trainer_core rebuild-store`, with the same --home/--db) to move it aside and "
            "rebuild it from the run folders",
        )


def os_error_reason(exc: OSError) -> str:
    """Why a path is unusable, in words (``FileExistsError`` from ``mkdir`` means "that is a file")."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a part of that path is a file, not a folder"
    return exc.strerror or str(exc)
