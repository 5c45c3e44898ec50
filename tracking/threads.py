"""Where a socket's database work runs.

Under a real server (daphne, uvicorn: "server" in the scope) a pool thread, so that a crowd of
sockets opening at once waits on the database side by side instead of in line behind Channels'
one shared thread. Channels' test communicators (no "server") keep the shared thread, which sees
the test's uncommitted rows.
"""

from channels.db import database_sync_to_async


def for_scope(func):
    """`func` as a coroutine function taking the socket's scope first: run(scope, *args)."""
    shared = database_sync_to_async(func)
    pooled = database_sync_to_async(func, thread_sensitive=False)

    def run(scope, *args, **kwargs):
        return (pooled if "server" in scope else shared)(*args, **kwargs)

    return run
