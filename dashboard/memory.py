"""Keep Streamlit's collection after every script run cheap, so a live page can run it each refresh.

Streamlit runs ``gc.collect(2)`` after every script run, fragments included. With torch, pandas, plotly
and transformers imported, that full collection walks ~285k long-lived objects: 250-350 ms measured on
this 2-core machine under load (30-50 ms quiet), most of a live Run page's refresh. Turning it off
instead (``runner.postScriptGC = false``) made the server's memory grow by ~140 MB in 50 minutes of a
live page, as cyclic garbage waited for a full collection. ``gc.freeze`` moves the objects alive now
(modules, classes, the libraries' tables) to a generation the collector never scans again: the same
collection then takes well under a millisecond and still frees the garbage the pages make.

The second job is a leak of Streamlit's: it keeps one lock per ``st.cache_data`` key ever computed
(``prune_cache_locks``), which a live page adds at every refresh; a daemon thread drops those of
evicted entries once a minute. The same thread hands the C allocator's free pages back to the system
(``release_free_memory``): a soak showed the server's resident size creeping while its live objects did
not (the Python heap flat within 0.1 MB, glibc's free-but-held bytes +5 MB in 10 minutes).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import platform
import sys
import threading
import time

logger = logging.getLogger(__name__)

_frozen_modules = 0
# How often the cache locks are pruned: a live page adds about one key per reader and refresh.
PRUNE_EVERY_S = 60.0
_housekeeper: threading.Thread | None = None
_housekeeper_lock = threading.Lock()


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


def prune_cache_locks() -> int | None:
    """Drop what Streamlit keeps per ``st.cache_data`` key after the key's entry is gone.

    Streamlit 1.67 creates one lock per cache key the first time it is computed and never drops it when
    the entry is evicted (``Cache._value_locks``). The live readers are keyed by the run's version, so a
    watched run adds a key per reader at every refresh: ~2 KB a minute per open Run page, without bound
    (the 3-hour soak's unbounded part). A lock that nobody holds and whose key is gone from the cache is
    safe to drop: a later computation of that key gets a new one.

    Returns:
        How many locks were dropped, or None if this Streamlit keeps its caches elsewhere (the bounded
        test ``test_cache_locks_stay_bounded`` then fails, so an upgrade cannot silently bring the
        growth back).
    """
    try:
        from streamlit.runtime.caching.cache_data_api import _data_caches

        with _data_caches._caches_lock:
            caches = [c for by_key in _data_caches._function_caches.values() for c in by_key.values()]
        dropped = 0
        for cache in caches:
            held = set()  # keys being computed now
            with cache._value_locks_lock:
                for key, lock in list(cache._value_locks.items()):
                    if lock.locked():
                        held.add(key)
                    elif not cache.storage.has(key):
                        del cache._value_locks[key]
                        dropped += 1
            # A per-key clear (dashboard.data drops a live run's older entries) leaves a generation count
            # behind for that key, also forever; it only matters while a computation of the key is in
            # flight, which holds the key's lock or an async future. Streamlit's own lock order: the
            # value locks alone, then the futures' lock before the invalidation lock.
            with cache._async_compute_futures_lock, cache._invalidation_lock:
                for key in list(cache._key_generations):
                    busy = key in held or key in cache._async_compute_futures
                    if not busy and not cache.storage.has(key):
                        del cache._key_generations[key]
                        dropped += 1
        return dropped
    except (ImportError, AttributeError):
        logger.warning("Streamlit's cache internals moved: cache locks are not pruned", exc_info=True)
        return None


def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc, else None (musl, macOS: their allocators differ)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_libc = _glibc()
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool | None:
    """Let glibc's allocator keep at most ``arenas`` arenas in this process; True if it took the setting.

    glibc gives threads their own arenas (up to 8 per core). Streamlit runs every script run in a new
    thread, so a live page's refreshes spread their allocations over many arenas, and what one refresh
    keeps (a cache entry, a frame) pins a page of an arena that the others left nearly empty: in a soak
    the server's growth sat in its thread arenas, a few MB each, while the Python heap stayed flat.
    Fewer arenas let freed space be reused by the next refresh. A server thread rarely allocates
    concurrently with another (the GIL), so the contention the extra arenas avoid hardly exists here.
    Set from the process itself, as ``MALLOC_ARENA_MAX`` would be; arenas made before the call stay, and
    glibc reads the setting only until it has made more than eight: call it before the server's threads
    start (``dashboard/serve.py`` does; Streamlit has made three by then, so a server keeps four).

    Returns:
        None where the C library is not glibc.
    """
    if _libc is None:
        return None
    return _libc.mallopt(_M_ARENA_MAX, arenas) == 1


def release_free_memory() -> bool | None:
    """Return the free pages glibc's allocator holds to the system; True if any were returned.

    Every refresh allocates and frees pickled cache entries, frames and messages of a few KB to a few
    hundred KB from several threads (a script run's thread, the event loop, the route's pool). glibc
    keeps what is freed in its arenas for reuse, and between long-lived blocks it never gives it back on
    its own: the dashboard's soak showed its resident size growing ~0.5 MB a minute while the Python heap
    stayed flat. ``malloc_trim(0)`` releases every whole free page of every arena (``madvise``), which is
    what a process that watches for hours needs; it takes a few milliseconds once a minute.

    Returns:
        None where the C library is not glibc (nothing to do: other allocators return memory their way).
    """
    if _libc is None:
        return None
    return bool(_libc.malloc_trim(0))


def _prune_forever(every_s: float) -> None:
    while True:
        time.sleep(every_s)
        try:
            prune_cache_locks()
            release_free_memory()
        except Exception:  # noqa: BLE001 - never let housekeeping end the thread over one bad pass
            logger.warning("dashboard housekeeping failed", exc_info=True)


def start_housekeeping(every_s: float = PRUNE_EVERY_S) -> bool:
    """Start the process's one housekeeping thread (a daemon), limiting glibc's arenas first; True if
    this call started it."""
    global _housekeeper
    with _housekeeper_lock:
        if _housekeeper is not None and _housekeeper.is_alive():
            return False
        limit_malloc_arenas()
        _housekeeper = threading.Thread(
            target=_prune_forever, args=(every_s,), name="dashboard-housekeeping", daemon=True
        )
        _housekeeper.start()
        return True
