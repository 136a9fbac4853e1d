"""Keep Streamlit's collection after every script run cheap, so a live page can run it each refresh.

Streamlit runs ``gc.collect(2)`` after every script run, fragments included. With torch, pandas, plotly
and transformers imported, that full collection walks ~285k long-lived objects: 250-350 ms measured on
this 2-core machine under load (30-50 ms quiet), most of a live Run page's refresh. Turning it off
instead (``runner.postScriptGC = false``) made the server's memory grow by ~140 MB in 50 minutes of a
live page, as cyclic garbage waited for a full collection. ``gc.freeze`` moves the objects alive now
(modules, classes, the libraries' tables) to a generation the collector never scans again: the same
collection then takes well under a millisecond and still frees the garbage the pages make.
"""

from __future__ import annotations

import gc
import sys

_frozen_modules = 0


def freeze_new_imports() -> bool:
    """After a page run that imported new modules, collect once and freeze what is left; True if it did.

    Called at the end of every full app run; a no-op (one ``len``) unless new modules were imported, so
    the objects frozen are the imports' and the few the first runs made, never a page's garbage.
    """
    global _frozen_modules
    if len(sys.modules) == _frozen_modules:
        return False
    gc.collect()
    gc.freeze()
    _frozen_modules = len(sys.modules)
    return True
