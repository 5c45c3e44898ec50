"""Track history (TrackPoint rows), written in batches by socket server processes.

The choice, so that tests and the HTTP fallback stay deterministic:

* Fixes that arrive over a rider socket served by a real server (daphne, uvicorn: the scope
  has a "server") are buffered in memory and written with one INSERT every BATCH_SIZE fixes or
  BATCH_SECONDS, whichever comes first (the first such socket starts the flusher on the
  server's loop, see `start`), when a rider socket closes (a server shutting down closes them
  all: uvicorn then re-raises SIGTERM, which skips atexit), when the process exits (atexit:
  daphne, SIGINT), and when an operator runs `manage.py flush_track` (a message to every server
  process over the channel layer; each flushes and answers).
* Every other fix (the HTTP fallback's `location_record`, consumers driven by
  channels.testing in tests) is written before the call returns, together with anything
  buffered. Code that runs a real server inside the test process and needs the track at once
  calls `history.flush()`.

A row's received_at is the time it was written (auto_now_add), at most BATCH_SECONDS after the
fix came in. A batch that cannot be written is counted and logged as lost (tracking.stats).
"""

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction

from tracking import stats

logger = logging.getLogger("tracking.pipeline")

BATCH_SIZE = getattr(settings, "TRACKING_HISTORY_BATCH_SIZE", 200)
BATCH_SECONDS = getattr(settings, "TRACKING_HISTORY_BATCH_SECONDS", 1.0)
STATS_PUBLISH_SECONDS = 5.0


def control_group() -> str:
    """Per database: processes of another installation sharing the Redis server (pub/sub
    channels ignore Redis database numbers) must not answer."""
    from tracking.live import _ns

    return f"tracking.history.{_ns()}"


_buffer: list[tuple[int, float, float, float | None, float]] = []
_lock = threading.Lock()
_tasks: list = []  # strong references: the loop keeps only weak ones
_started_loops: weakref.WeakSet = weakref.WeakSet()
_wakeups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> asyncio.Event
_atexit_registered = False


def add(
    *, rider_id: int, lng: float, lat: float, accuracy: float | None, at: float, batch: bool
) -> None:
    """Keep one fix for the track (at: recorded_at as a POSIX timestamp); batch=False writes it
    (and whatever is buffered) before returning."""
    with _lock:
        _buffer.append((rider_id, lng, lat, accuracy, at))
        full = len(_buffer) >= BATCH_SIZE
    if not batch:
        flush()
    elif full:
        _wake_flushers()  # batch=True callers may be on an event loop: no database here


def pending() -> int:
    return len(_buffer)


def flush() -> int:
    """Write every buffered fix now; returns how many rows were written."""
    with _lock:
        rows = _buffer[:]
        _buffer.clear()
    if not rows:
        return 0
    try:
        with transaction.atomic():
            _insert(rows)
    except Exception:
        logger.exception("tracking: could not write %d track point(s)", len(rows))
        stats.loss("history_failed", len(rows))
        return 0
    stats.incr("history.written", len(rows))
    return len(rows)


def _insert(rows) -> None:
    """One INSERT for the batch. On SpatiaLite and PostGIS the point is built by the database
    from its coordinates: model instances, GEOS objects and WKB per row cost ten times more
    than the rest of a fix."""
    from tracking.models import TrackPoint

    ops = connection.ops
    make_point = (
        "MakePoint(%s, %s, 4326)"
        if getattr(ops, "spatialite", False)
        else "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
        if getattr(ops, "postgis", False)
        else None
    )
    if make_point is None:
        TrackPoint.objects.bulk_create(
            [
                TrackPoint(
                    rider_id=rider_id,
                    point=Point(lng, lat, srid=4326),
                    accuracy_m=accuracy,
                    recorded_at=datetime.fromtimestamp(at, UTC),
                )
                for rider_id, lng, lat, accuracy, at in rows
            ],
            batch_size=500,
        )
        return
    meta, q = TrackPoint._meta, ops.quote_name
    columns = ", ".join(
        q(meta.get_field(name).column)
        for name in ("rider", "point", "accuracy_m", "recorded_at", "received_at")
    )
    sql = f"INSERT INTO {q(meta.db_table)} ({columns}) VALUES (%s, {make_point}, %s, %s, %s)"
    adapt = ops.adapt_datetimefield_value
    received = adapt(datetime.now(UTC))
    params = [
        (rider_id, lng, lat, accuracy, adapt(datetime.fromtimestamp(at, UTC)), received)
        for rider_id, lng, lat, accuracy, at in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


# --- the flusher of a socket server process ----------------------------------------------------


def start() -> None:
    """Start the flusher on the running loop (idempotent): batched fixes get written.

    Called by the rider consumer when a real server (daphne, uvicorn) serves it.
    """
    global _atexit_registered
    loop = asyncio.get_running_loop()
    if loop in _started_loops:
        return
    _started_loops.add(loop)
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_flush_at_exit)
    wakeup = _wakeups[loop] = asyncio.Event()
    _tasks.extend((loop.create_task(_periodic(wakeup)), loop.create_task(_listen())))


def _flush_at_exit() -> None:
    written = flush()
    if written:
        logger.info("tracking: wrote %d buffered track point(s) at exit", written)


def _wake_flushers() -> None:
    for loop, event in list(_wakeups.items()):
        if loop.is_closed():
            continue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)


async def _periodic(wakeup: asyncio.Event) -> None:
    flush_async = database_sync_to_async(flush)
    publish_async = database_sync_to_async(stats.publish)
    last_publish = time.monotonic()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), BATCH_SECONDS)
        wakeup.clear()
        try:
            if _buffer:
                await flush_async()
            if time.monotonic() - last_publish >= STATS_PUBLISH_SECONDS:
                last_publish = time.monotonic()
                await publish_async()
        except Exception:  # keep flushing whatever one round did
            logger.exception("tracking: history flusher")


async def _listen() -> None:
    """Answer `manage.py flush_track`: flush now and reply with what was written."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    channel = await layer.new_channel()
    group = control_group()
    await layer.group_add(group, channel)
    flush_async = database_sync_to_async(flush)
    try:
        while True:
            try:
                message = await layer.receive(channel)
                if message.get("type") != "history.flush":
                    continue
                written = await flush_async()
                reply = message.get("reply_to")
                if reply:
                    await layer.send(
                        reply,
                        {"type": "history.flushed", "process": stats.PROCESS, "written": written},
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("tracking: history control channel")
                await asyncio.sleep(1)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(layer.group_discard(group, channel))


async def stop() -> None:
    """Stop the running loop's flusher (tests; servers just exit, atexit flushes)."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _tasks if t.get_loop() is loop]
    for task in mine:
        task.cancel()
        _tasks.remove(task)
    for task in mine:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    _started_loops.discard(loop)


def discard_for_tests() -> None:
    with _lock:
        _buffer.clear()
