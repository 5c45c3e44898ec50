"""Where a socket's database work runs.

Under a real server (daphne, uvicorn: "server" in the scope) on the process's socket threads: a
pool of its own, settings.TRACKING_SOCKET_DB_THREADS strong (default 1), so that a crowd of
sockets opening at once neither waits behind Channels' one shared thread (which every HTTP
request of the process uses too) nor spreads over the loop's default executor. The work is
Python (the ORM, the estimate) and holds the GIL: measured with 1,000 sockets connecting at once
on SpatiaLite, one thread connected them all in 5.5 s, two in 6.2 s, three in 7.8 s and the
default executor's six in 7.9 s; each more thread only adds hand-overs of the GIL. On
PostgreSQL a query waits on the network, and a second thread can use that wait.

Channels' test communicators (no "server") keep the shared thread, which sees the test's
uncommitted rows.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings

# Long enough for the event loop's thread, woken when the GIL is released, to take it.
YIELD_SECONDS = 0.0002

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def socket_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=getattr(settings, "TRACKING_SOCKET_DB_THREADS", 1),
                thread_name_prefix="socket-db",
            )
        return _executor


def for_scope(func):
    """`func` as a coroutine function taking the socket's scope first: run(scope, *args)."""
    shared = database_sync_to_async(func)
    pooled = None

    def run(scope, *args, **kwargs):
        nonlocal pooled
        if "server" not in scope:
            return shared(*args, **kwargs)
        if pooled is None:
            pooled = database_sync_to_async(
                func, thread_sensitive=False, executor=socket_executor()
            )
        return pooled(*args, **kwargs)

    return run


def yield_to_loop() -> None:
    """Let a waiting event loop have the GIL: call it every few milliseconds of work in a thread
    beside a socket server's loop.

    CPython hands the GIL to a waiting thread only when its holder has kept it a whole switch
    interval (5 ms) without letting go. A thread that lets go and takes it back often -- SQLite
    gives it up for every row it steps, numpy around many small operations -- takes it back
    before the woken waiter runs, again and again, and the loop waits for all of it: measured,
    an ETA round of 500 orders held every socket of its process up to 100-250 ms. A short real
    sleep lets the loop in."""
    time.sleep(YIELD_SECONDS)
