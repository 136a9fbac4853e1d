"""What the app shows instead of its pages when the runs folder or the metrics store cannot be used."""

from __future__ import annotations

import streamlit as st

from dashboard import data
from trainer_core import ConfigError, RunStateError, StoreDamagedError


def render_store_problem() -> bool:
    """Show the engine's message (and, for a damaged store, a rebuild button); True if there was one."""
    try:
        data.get_launcher()
    except StoreDamagedError as exc:
        st.error(exc.message, icon=":material/database:")
        st.caption(
            "Rebuilding moves the damaged file aside (it is never deleted) and recovers every run, its "
            "status and its curves from the run folders (config.yaml, trainer_state.json, the final model)."
        )
        if st.button("Rebuild the store from the run folders", key="store.rebuild", type="primary"):
            try:
                report = data.rebuild()
            except (ConfigError, RunStateError) as problem:
                st.error(getattr(problem, "message", None) or str(problem))
                return True
            moved = ", ".join(report["moved_aside"]) or "nothing"
            st.success(f"Recovered {report['recovered']} runs. Moved aside: {moved}.")
            st.button("Open the runs", key="store.reload")
        return True
    except ConfigError as exc:
        st.error(exc.message, icon=":material/folder_off:")
        return True
    return False
