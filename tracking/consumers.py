"""WebSocket consumers: authenticate, join groups, relay. Work happens in services.

Relaying is the hot path of live tracking, so these consumers:

* write the text that tracking.broadcast serialised once (no json.dumps per watcher);
* skip Channels' per-message `aclose_old_connections()` (a thread round trip for every relayed
  frame): every database access here goes through `database_sync_to_async`, which closes stale
  connections itself;
* coalesce locations for a watcher that is behind: a watcher gets at most one location per
  MIN_LOCATION_INTERVAL; locations arriving faster (a backlog being drained, a burst) wait, and
  a newer one replaces the one waiting (counted as "coalesced"). Status messages are never
  coalesced, dropped or reordered with locations;
* count what is lost (tracking.stats): a rider's live fixes are numbered, so a watcher that sees
  fix n+k right after fix n knows the layer lost k-1 pushes.
"""

import asyncio
import json
from collections import deque
from datetime import datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from orders.errors import OrderError
from orders.permissions import user_can_view_order
from orders.selectors import order_for_snapshot
from orders.status import WITH_RIDER
from tracking import broadcast, history, live, services, stats
from tracking.auth import TokenUser, socket_user
from tracking.fanout import order_fanout
from tracking.snapshot import order_snapshot
from tracking.threads import for_scope

FORBIDDEN = 4403
SERVER_ERROR = 1011
MIN_LOCATION_INTERVAL = getattr(settings, "TRACKING_WATCHER_MIN_INTERVAL_MS", 50) / 1000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _snapshot(user, number: str) -> dict | None:
    order = order_for_snapshot(number)
    if order is None or not user_can_view_order(user, order):
        return None
    return order_snapshot(order, user)


_snapshot_for_scope = for_scope(_snapshot)  # a dozen queries: see tracking.threads


def _snapshot_for(scope, number: str):
    return _snapshot_for_scope(scope, scope["user"], number)


@database_sync_to_async
def _is_rider(user) -> bool:
    """And, in the same trip to the database, have the rider's routing state cached for the
    first fix (tracking.live)."""
    if not (user.is_authenticated and hasattr(user, "rider_profile")):
        return False
    live.rider_read(user.pk)
    return True


def _parse_fix(content: dict) -> dict:
    try:
        accuracy = content.get("accuracy")
        seq = content.get("seq")
        fix = {
            "lat": float(content["lat"]),
            "lng": float(content["lng"]),
            "accuracy": float(accuracy) if accuracy is not None else None,
            "recorded_at": datetime.fromisoformat(
                str(content["recorded_at"]).replace("Z", "+00:00")
            ),
            "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        }
    except (KeyError, TypeError, ValueError):
        raise services.LocationRejected(
            _("A location needs lat, lng and recorded_at (ISO 8601).")
        ) from None
    return fix


_ingest_loading = database_sync_to_async(services.location_ingest)
_flush_track = database_sync_to_async(history.flush)


async def _ingest(layer, rider_id: int, fix: dict) -> services.Accepted:
    """alocation_ingest on the event loop (cache only, without blocking it), pushes included;
    when the cache holds no routing state for the rider, the fix goes through a thread, which
    loads it from the database, and is pushed from here."""
    try:
        return await services.alocation_ingest(rider_id=rider_id, layer=layer, **fix)
    except live.StateMissing:
        accepted = await _ingest_loading(rider_id=rider_id, batch=True, **fix)
    await broadcast.push(layer, accepted.groups, accepted.message)
    return accepted


class RelayConsumer(AsyncWebsocketConsumer):
    """Shared by the order and rider sockets: dispatch without a thread hop, send text as is."""

    async def dispatch(self, message):
        # Channels' dispatch awaits aclose_old_connections() (a thread hop) for every message.
        # Our handlers reach the database only through database_sync_to_async, which does that.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def send_payload(self, payload: dict) -> None:
        await self.send_text(_dumps(payload))


class OrderConsumer(RelayConsumer):
    """/ws/orders/<number>/: the order's customer, its rider and operators only.

    Order sockets have no channel of their own: they receive their order group's pushes through
    the process's fan-out (tracking.fanout), which calls `deliver`.
    """

    channel_layer_alias = "tracking.fanout"  # no such layer: no channel per watcher
    group = None
    _live = False
    _timer = None
    _early: list | None = None  # pushes that came while the snapshot was being read
    _watching = None  # the order number this socket counts as watched (tracking.eta)

    async def connect(self):
        user = self.scope["user"]
        number = self.scope["url_route"]["kwargs"]["number"]
        # Made on first use: most watchers are idle most of the time, and a thousand of them
        # per process should cost little memory.
        self._out: deque | None = None  # [is_location, text] waiting for the socket, in order
        self._flushing = False
        self._timer = None
        self._last_location = 0.0
        self._seen: dict[int, int] | None = None  # rider -> last live fix counter relayed
        # A token's user is read with the snapshot (one trip to a thread), which refuses anyone
        # who may not see the order; an anonymous browser is refused at once.
        if not isinstance(user, TokenUser) and not user.is_authenticated:
            await self.close(code=FORBIDDEN)
            return
        # Join before reading the snapshot, so that no change falls between the two; what
        # arrives meanwhile waits in _early and follows the snapshot.
        self.group = broadcast.order_group(number)
        self._early = []
        await order_fanout().join(self.group, self)
        snapshot = await _snapshot_for(self.scope, number)
        if snapshot is None:
            await order_fanout().leave(self.group, self)
            self.group = None
            await self.close(code=FORBIDDEN)
            return
        self._live = snapshot["status"] in WITH_RIDER
        await self.accept()
        await self.send_payload(snapshot)
        early, self._early = self._early, None
        for handler_name, message in early:
            await self.deliver(handler_name, message)
        # ETA changes are pushed by the process's ticker for the orders watched in it (a real
        # server only; tests drive tracking.eta.tick themselves).
        from tracking import eta

        self._watching = number
        eta.watch(number)
        if "server" in self.scope:
            eta.start()

    async def disconnect(self, code):
        if self._watching is not None:
            from tracking import eta

            eta.unwatch(self._watching)
            self._watching = None
        if self._timer is not None:
            self._timer.cancel()
        if self.group:
            await order_fanout().leave(self.group, self)
            self.group = None

    async def deliver(self, handler_name: str, message: dict) -> None:
        """A push to the order group (from tracking.fanout): order_status, order_location..."""
        if self._early is not None:
            self._early.append((handler_name, message))
            return
        if handler_name.startswith("order_"):
            handler = getattr(self, handler_name, None)
            if handler is not None:
                await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(content, dict) and content.get("type") == "resync":
            snapshot = await _snapshot_for(self.scope, self.scope["url_route"]["kwargs"]["number"])
            if snapshot:
                self._seen = None
                self._live = snapshot["status"] in WITH_RIDER
                await self._enqueue(False, _dumps(snapshot))

    async def order_status(self, event):
        payload = event.get("payload") or json.loads(event["text"])
        # Pushes follow the rider only while the order is with them: whatever location is still
        # in flight when it is delivered (or released, cancelled) must not reach the watcher.
        self._live = payload.get("status") in WITH_RIDER
        self._seen = None
        await self._enqueue(False, event.get("text") or _dumps(payload))

    async def order_eta(self, event):
        if self._live:  # an estimate still in flight after the final status is not shown
            await self._enqueue(False, event.get("text") or _dumps(event["payload"]))

    async def order_chat(self, event):
        await self._enqueue(False, event.get("text") or _dumps(event["payload"]))

    async def order_location(self, event):
        if not self._live:
            stats.incr("withheld")
            return
        n = event.get("n")
        if n is not None:
            rider = event["rider"]
            seen = self._seen
            if seen is None:
                seen = self._seen = {}
            last = seen.get(rider)
            if last is not None and n > last + 1:
                stats.loss("sequence_gap", n - last - 1, f"rider {rider} on {self.group}")
            seen[rider] = n
        else:  # a fix that came over HTTP has no counter: count afresh from the next one
            self._seen = None
        text = event.get("text") or _dumps(event["payload"])
        now = self._loop_time()
        if (
            not self._out
            and not self._flushing
            and now - self._last_location >= (MIN_LOCATION_INTERVAL)
        ):
            self._last_location = now
            await self._write(text)
            return
        # Behind: keep only the newest location waiting (never jumping over a status).
        if self._out and self._out[-1][0]:
            self._out[-1][1] = text
            stats.incr("coalesced")
        else:
            self._waiting().append([True, text])
        self._schedule(self._last_location + MIN_LOCATION_INTERVAL - now)

    async def _enqueue(self, is_location: bool, text: str) -> None:
        if not self._out and not self._flushing:
            await self._write(text)
            return
        self._waiting().append([is_location, text])
        self._schedule(0)

    def _waiting(self) -> deque:
        if self._out is None:
            self._out = deque()
        return self._out

    def _schedule(self, delay: float) -> None:
        if self._timer is None and not self._flushing:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        if not self._flushing:
            self._flushing = True
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        wait = 0.0
        try:
            while self._out:
                is_location, text = self._out[0]
                if is_location:
                    now = self._loop_time()
                    wait = self._last_location + MIN_LOCATION_INTERVAL - now
                    if wait > 0:
                        break
                    self._last_location = now
                self._out.popleft()
                await self._write(text)
        finally:
            self._flushing = False
        if self._out:
            self._schedule(wait)

    async def _write(self, text: str) -> None:
        try:
            await self.send_text(text)
        except Exception as exc:  # the socket went away under us
            stats.loss("send_failed", 1, repr(exc))
        else:
            stats.incr("delivered")

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()


class RiderConsumer(RelayConsumer):
    """/ws/rider/: a rider streams {"type": "location", lat, lng, accuracy, recorded_at[, seq]}.

    Each fix is answered: {"type": "ack", "recorded_at"[, "seq"]} once it is live, or an error
    frame {"type": "error", "code", "message", "ref"[, "seq"][, "in_track"]}. A late fix (older
    than the live one) gets code "stale_location" with in_track true: it was kept in the track.
    """

    group = None
    batch = False

    async def connect(self):
        user = self.scope["user"]
        if not await _is_rider(user):
            await self.close(code=FORBIDDEN)
            return
        # A real server (daphne, uvicorn) puts "server" in the scope, channels.testing does not:
        # only then is the track written in batches (tracking.history).
        self.batch = "server" in self.scope
        if self.batch:
            history.start()
        self.group = broadcast.rider_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.batch and history.pending():
            # A server shutting down closes its sockets first: uvicorn re-raises SIGTERM once
            # they are closed, and a process killed by a signal runs no atexit handler.
            await _flush_track()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Bad frames get an error frame; the socket stays open.
        try:
            content = json.loads(text_data or "")
        except (TypeError, ValueError):
            await self.send_payload({"type": "error", "message": _("Malformed message: not JSON.")})
            return
        if not isinstance(content, dict) or content.get("type") != "location":
            await self.send_payload({"type": "error", "message": _("Unknown message type.")})
            return
        try:
            fix = _parse_fix(content)
            try:
                accepted = await _ingest(self.channel_layer, self.scope["user"].pk, fix)
            finally:
                if not self.batch:  # see tracking.history: written before the answer
                    await _flush_track()
        except OrderError as exc:
            error = {
                "type": "error",
                "code": exc.code,
                "message": str(exc.message),
                "ref": content.get("recorded_at"),
            }
            if content.get("seq") is not None:
                error["seq"] = content.get("seq")
            if isinstance(exc, services.StaleLocation):
                error["in_track"] = exc.in_track
            await self.send_payload(error)
            return
        except (ConnectionError, OSError, RedisError) as exc:
            # Redis is away: the fix is neither stored nor pushed. No answer for it: the phone
            # keeps it queued and sends it again once its socket is back (we close this one).
            stats.loss("push_failed", 1, f"rider {self.scope['user'].pk}: {exc!r}")
            await self.close(code=SERVER_ERROR)
            return
        ack = {"type": "ack", "recorded_at": accepted.position["recorded_at"]}
        if fix["seq"] is not None:
            ack["seq"] = fix["seq"]
        await self.send_payload(ack)

    async def order_status(self, event):
        await self.send_text(event.get("text") or _dumps(event["payload"]))

    async def dispatch_offer(self, event):
        await self.send_text(event.get("text") or _dumps(event["payload"]))

    async def dispatch_board(self, event):
        await self.send_text(event.get("text") or _dumps(event["payload"]))

    async def order_chat(self, event):
        await self.send_text(event.get("text") or _dumps(event["payload"]))


OPS_INTERVAL = getattr(settings, "TRACKING_OPS_INTERVAL_MS", 1000) / 1000


class OpsConsumer(RelayConsumer):
    """/ws/ops/: the operators' live map (staff only).

    Every online rider's fixes reach it through the ops group; the map gets them in batches, the
    newest fix per rider at most every OPS_INTERVAL ({"type": "positions", "positions": [...]}),
    so a thousand riders cost the browser one message a second. Status changes and dispatch's
    at-risk alerts are sent at once. Types the map does not show are ignored.
    """

    joined: tuple[str, ...] = ()

    async def connect(self):
        user = await socket_user(self.scope)
        if not (user.is_authenticated and user.is_staff):
            await self.close(code=FORBIDDEN)
            return
        self._pending: dict[int, dict] = {}
        self._timer = None
        self.joined = (broadcast.OPS_GROUP, broadcast.OPS_DISPATCH_GROUP)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "_timer", None) is not None:
            self._timer.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message):
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is not None:
            await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        pass  # the map only listens

    async def order_location(self, event):
        payload = event.get("payload") or json.loads(event["text"])
        if "rider" not in payload:
            return
        if payload["rider"] in self._pending:
            stats.incr("ops.coalesced")
        self._pending[payload["rider"]] = {
            k: payload.get(k) for k in ("rider", "lat", "lng", "accuracy", "recorded_at")
        }
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(OPS_INTERVAL, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        asyncio.get_running_loop().create_task(self.flush_positions())

    async def flush_positions(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending.values())
        self._pending.clear()
        await self.send_payload(broadcast.ops_positions_payload(batch))

    async def order_status(self, event):
        await self.send_text(event.get("text") or _dumps(event["payload"]))

    async def dispatch_at_risk(self, event):
        await self.send_text(event.get("text") or _dumps(event["payload"]))
