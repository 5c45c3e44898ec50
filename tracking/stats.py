"""Counters of the live tracking pipeline: what came in, what went out, and what was lost.

Counting is process-local (a dict increment on the hot path, no round trip). Each socket server
process publishes its counters to the cache every few seconds (tracking.history's flusher does
it), so that /api/ops/tracking-stats/ can add up every process. Anything lost is also logged,
at most once per LOG_EVERY_SECONDS per kind, so a loss is never silent.

Kinds of loss (all under "lost."):
    lost.push_failed      a group_send raised: the fix reached no watcher
    lost.sequence_gap     a watcher saw rider fix n+k after n: k-1 pushes vanished in the layer
    lost.send_failed      a frame could not be written to a watcher's socket
    lost.history_failed   track points that could not be written to the database
Shed on purpose (not loss: the watcher got a newer position instead), under "coalesced".
"""

import logging
import os
import socket
import time
from collections import Counter

logger = logging.getLogger("tracking.pipeline")

LOG_EVERY_SECONDS = 10.0
PUBLISH_TTL_SECONDS = 60

counters: Counter = Counter()
STARTED = time.time()
PROCESS = f"{socket.gethostname()}:{os.getpid()}"
_last_logged: dict[str, float] = {}
_logged_counts: Counter = Counter()


def _registry_key() -> str:
    from tracking.live import _ns

    return f"tracking-stats:{_ns()}"


def incr(name: str, n: int = 1) -> None:
    counters[name] += n


def loss(kind: str, n: int = 1, detail: str = "") -> None:
    """Count n messages lost and log it (rate limited, with the count since the last line)."""
    if n <= 0:
        return
    name = f"lost.{kind}"
    counters[name] += n
    now = time.monotonic()
    if now - _last_logged.get(name, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
        since = counters[name] - _logged_counts[name]
        _logged_counts[name] = counters[name]
        _last_logged[name] = now
        logger.warning(
            "tracking: %d message(s) lost (%s) since the last report, %d in total%s",
            since,
            kind,
            counters[name],
            f": {detail}" if detail else "",
        )


def process_snapshot() -> dict:
    return {
        "process": PROCESS,
        "since": STARTED,
        "at": time.time(),
        "counters": dict(counters),
    }


def publish() -> None:
    """Put this process's counters where the operators' endpoint reads them."""
    from tracking.live import shared_cache

    cache = shared_cache()
    key = f"{_registry_key()}:{PROCESS}"
    cache.set(key, process_snapshot(), PUBLISH_TTL_SECONDS)
    registry = cache.get(_registry_key()) or {}
    now = time.time()
    if key not in registry or now - registry[key] > PUBLISH_TTL_SECONDS / 2:
        registry = {k: t for k, t in registry.items() if now - t < PUBLISH_TTL_SECONDS}
        registry[key] = now
        cache.set(_registry_key(), registry, None)


def collect() -> dict:
    """Every live process's counters and their totals (this process's own are always fresh)."""
    from tracking.live import shared_cache

    publish()
    cache = shared_cache()
    registry = cache.get(_registry_key()) or {}
    found = cache.get_many(list(registry))
    processes = sorted(found.values(), key=lambda p: p["process"])
    totals: Counter = Counter()
    for proc in processes:
        totals.update(proc["counters"])
    lost = {k.removeprefix("lost."): v for k, v in totals.items() if k.startswith("lost.")}
    return {
        "processes": processes,
        "totals": dict(sorted(totals.items())),
        "lost": sum(lost.values()),
        "lost_by_kind": lost,
        "coalesced": totals.get("coalesced", 0),
    }


def reset() -> None:
    """For tests."""
    counters.clear()
    _last_logged.clear()
    _logged_counts.clear()
