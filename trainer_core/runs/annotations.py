"""A run's note and tags: the rules a tag must follow, in one place for the CLI, the dashboard and the API,
and the copy of a run's name, note and tags kept in its folder for rebuild-store."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from trainer_core.errors import ConfigError
from trainer_core.runs.folder import RunFolder
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger(__name__)

# Long enough for "lr-sweep-2024-06" or a ticket id; a tag is a label in a table cell, not a sentence.
MAX_TAG_LENGTH = 40


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags stripped, empty ones dropped, repeats dropped ignoring case (the first spelling is kept).

    Raises:
        ConfigError: (field ``tags``) a tag is longer than ``MAX_TAG_LENGTH`` or holds a comma.
    """
    if isinstance(tags, str):
        raise ConfigError("tags", "tags must be a list of strings, not one string: split them first")
    out: list[str] = []
    seen: set[str] = set()
    for raw in tags:
        tag = str(raw).strip()
        if not tag:
            continue
        if "," in tag:
            # Commas separate tags where they are typed as one line (the dashboard): one cannot be inside one.
            raise ConfigError("tags", f"the tag {tag!r} contains a comma: split it into separate tags")
        if len(tag) > MAX_TAG_LENGTH:
            raise ConfigError(
                "tags",
                f"the tag {tag[:20]!r}... is {len(tag)} characters long: shorten it to at most "
                f"{MAX_TAG_LENGTH} (put longer text in the note)",
            )
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    return out


def save_annotations(store: MetricsStore, run_id: str, folder: RunFolder) -> bool:
    """Copy a run's name, note and tags from the store into its folder; False where that was not possible.

    Called after each change in the store, which stays the one place they are read from. A run without a
    folder has nothing for rebuild-store to recover anyway; a folder that refuses the write (a full disk)
    is logged, not raised: the change itself is saved, only its spare copy is not.
    """
    if not folder.path.is_dir():
        return False
    run = store.get_run(run_id)
    try:
        folder.write_annotations(run["name"], run.get("note"), run.get("tags") or [])
    except OSError:
        logger.warning(
            "could not copy the name, note and tags of run %s into %s", run_id, folder.path, exc_info=True
        )
        return False
    return True
