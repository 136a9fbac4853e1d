"""A run's note and tags: the rules a tag must follow, in one place for the CLI, the dashboard and the API."""

from __future__ import annotations

from collections.abc import Iterable

from trainer_core.errors import ConfigError

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
