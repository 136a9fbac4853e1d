"""The New run form's drafts on disk: what lets a browser reload (a new Streamlit session) keep the form.

A draft is one small JSON file, ``<runs folder>/drafts/<id>.json`` (its text is ``form.draft_text``),
and the New run page's address names it: ``/new?draft=<id>``. Uploaded files are in a draft as the path
they were saved at (under ``uploads/``), so they survive with it. A session writes only the draft it
created: a reloaded or duplicated tab starts a new draft from the one its address names, so two tabs
never overwrite each other's form.

Why not the values themselves in the address: the advanced JSON box alone can pass the ~2,000 characters
that links are safe to carry, and a file path in a shared link says more than it should.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

DRAFTS = "drafts"  # the dashboard's own folder in the runs folder, beside uploads/
_ID = re.compile(r"[0-9a-f]{12}")
# Drafts nobody touched for this long are removed when a new one is made (each is well under 1 kB).
KEEP_S = 30 * 24 * 3600


def folder(home: str | Path) -> Path:
    return Path(home) / DRAFTS


def new_id() -> str:
    return secrets.token_hex(6)


def is_id(text: Any) -> bool:
    """Whether ``text`` can name a draft (it becomes a file name, so nothing else is accepted)."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def load(drafts: Path, draft_id: str) -> dict[str, Any] | None:
    """The draft's content, or None when there is no such draft or its file is not a JSON object."""
    if not is_id(draft_id):
        return None
    try:
        value = json.loads((drafts / f"{draft_id}.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def save(drafts: Path, draft_id: str, text: str) -> None:
    """Write the draft whole or not at all (a reload during the write reads the previous one)."""
    if not is_id(draft_id):
        raise ValueError(f"not a draft id: {draft_id!r}")
    drafts.mkdir(parents=True, exist_ok=True)
    tmp = drafts / f"{draft_id}.json.partial"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(drafts / f"{draft_id}.json")


def prune(drafts: Path, keep_s: float = KEEP_S, now: float | None = None) -> int:
    """Remove the drafts not written for ``keep_s`` seconds; returns how many went."""
    cutoff = (time.time() if now is None else now) - keep_s
    removed = 0
    for path in drafts.glob("*.json*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # another dashboard removed it first
    return removed
