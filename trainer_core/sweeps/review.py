"""A sweep form's every problem at once: each search-space row checked on its own, then the spec.

:func:`parse_sweep_spec` stops at the first problem, which suits a file; a form with a table of rows
shows a message beside each bad row, so the rows are checked one by one here with the same rules
(``dimension_from_row``, the run config's own checks on each bound) before the whole spec is parsed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from trainer_core.config import config_from_dict
from trainer_core.errors import ConfigError
from trainer_core.sweeps.space import dimension_from_row
from trainer_core.sweeps.spec import SweepSpec, parse_sweep_spec

_ROW_KEYS = ("distribution", "low", "high", "values")


@dataclasses.dataclass(frozen=True)
class SweepReview:
    """The spec when it is sound, else the problems: ``rows`` by row index, ``errors`` for the rest."""

    spec: SweepSpec | None
    rows: dict[int, ConfigError]
    errors: tuple[ConfigError, ...]

    @property
    def ok(self) -> bool:
        return self.spec is not None


def review_sweep_spec(raw: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> SweepReview:
    """Check a sweep spec whose ``space`` is a list of rows ({field, distribution, low, high, values}).

    Rows without a field and without anything else are ignored (the table's empty last row). The rows
    are checked only against a base config that is sound itself: a bound is checked inside the base
    config, whose own problem would otherwise be reported on every row.

    Returns:
        a :class:`SweepReview`: the parsed spec, or each bad row's error and the first other error.
    """
    rows = [dict(r) for r in raw.get("space") or ()]
    try:
        base = config_from_dict(dict(raw.get("base") or {}), base_dir=base_dir).to_dict()
    except ConfigError as exc:
        return SweepReview(None, {}, (exc,))
    problems: dict[int, ConfigError] = {}
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        field = str(row.get("field") or "").strip()
        if not field:
            if any(_given(row.get(k)) for k in _ROW_KEYS):
                problems[i] = ConfigError("space", f"row {i + 1}: choose the field this row searches")
            continue
        if field in seen:
            problems[i] = ConfigError(field, f"search space: also in row {seen[field] + 1}; keep one row")
            continue
        seen[field] = i
        try:
            dimension_from_row({k: v for k, v in row.items() if _given(v)}, base)
        except ConfigError as exc:
            problems[i] = exc
    if problems:
        return SweepReview(None, problems, ())
    kept = [{k: v for k, v in r.items() if _given(v)} for r in rows if str(r.get("field") or "").strip()]
    try:
        spec = parse_sweep_spec({**raw, "space": kept}, base_dir=base_dir)
    except ConfigError as exc:
        return SweepReview(None, {}, (exc,))
    return SweepReview(spec, {}, ())


def _given(value: Any) -> bool:
    """A table cell holds something (not None, NaN or blank text)."""
    if value is None:
        return False
    if isinstance(value, float) and value != value:  # NaN: an empty number cell
        return False
    return not (isinstance(value, str) and not value.strip())
