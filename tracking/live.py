"""What the tracking hot path knows, kept in the cache (Redis in production, locmem by default).

A rider's fix is validated and routed without a database round trip: one cache read brings
the rider's live position and their *routing state* (may they share a position, the campus
bounds, the order numbers their fixes go to), one cache write stores the new position.

The routing state is rebuilt from the database on a miss and invalidated when it changes:
order transitions (tracking.broadcast.order_changed_on_commit), going offline, suspension
(position_clear, which riders.services calls). Invalidation bumps a per-rider generation
token instead of deleting, so a rebuild that raced with the change is never trusted: it is
stored under the generation it started from. Refusals (offline, not approved) are not cached,
so going online is seen at once; a positive state lives STATE_TTL_SECONDS at most, the safety
net for changes made behind the services' back (the admin, the shell).

On the socket path with Redis (RedisHotPath) a fix costs a single round trip: the socket's
process remembers the rider's state and last fix, and one script stores the new position and
publishes it only if the generation token and the last fix in Redis are still the ones it
validated against; otherwise it reads them afresh and validates again.

Keys carry a short namespace derived from the database name, so that two databases sharing
one Redis (a benchmark's temporary database and a development one, say) never read each
other's riders. Other modules read positions with position_get (or the "live-pos" entries'
"p", which is the payload watchers see).
"""

import asyncio
import hashlib
import os
import time
import weakref
from collections import deque
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.db import connections, transaction

TTL_SECONDS = 60 * 60
STATE_TTL_SECONDS = 120
GEN_TTL_SECONDS = 2 * STATE_TTL_SECONDS

_namespaces: dict[str, str] = {}
_shared_cache = None


def shared_cache():
    """One cache client for the whole process.

    `django.core.cache.cache` is per asyncio task (an asgiref Local): in a socket server every
    consumer would open its own Redis connection pool, and every database_sync_to_async call
    made from it too. The backends are thread-safe (a redis-py pool, locmem's lock).
    """
    global _shared_cache
    if _shared_cache is None:
        shared = caches.create_connection("default")
        inner = getattr(shared, "_cache", None)
        if isinstance(shared, RedisCache) and len(getattr(inner, "_servers", ())) == 1:
            # RedisCache builds a redis.Redis client around its pool for every call (~50 us of
            # CPU, a third of a get): keep one. Same pool, same keys, same serialisation.
            client = inner.get_client(write=True)
            inner.get_client = lambda key=None, *, write=False: client
        _shared_cache = shared
    return _shared_cache


def _settings_changed(*, setting, **kwargs):
    global _shared_cache
    if setting == "CACHES":
        _shared_cache = None


setting_changed.connect(_settings_changed)


def _ns() -> str:
    name = str(connections.settings["default"].get("NAME") or "")
    ns = _namespaces.get(name)
    if ns is None:
        ns = _namespaces[name] = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return ns


def _key(rider_id: int) -> str:
    return f"live-pos:{_ns()}:{rider_id}"


def _state_key(rider_id: int) -> str:
    return f"live-route:{_ns()}:{rider_id}"


def _gen_key(rider_id: int) -> str:
    return f"live-gen:{_ns()}:{rider_id}"


def _t_key(rider_id: int) -> str:
    """The live position's recorded_at in microseconds, a plain integer that Redis scripts can
    compare (the position itself is pickled)."""
    return f"live-t:{_ns()}:{rider_id}"


def _order_key(number: str) -> str:
    return f"live-order-rider:{_ns()}:{number}"


# --- live positions ----------------------------------------------------------------------------


def position_get(rider_id: int) -> dict | None:
    """The rider's last live position as pushed to watchers, or None."""
    entry = shared_cache().get(_key(rider_id))
    return entry["p"] if entry else None


def positions_get(rider_ids) -> dict[int, dict | None]:
    """position_get for many riders in one round trip (the ETA ticker, the ops map)."""
    ids = list(rider_ids)
    found = shared_cache().get_many([_key(r) for r in ids]) if ids else {}
    return {rider_id: position_in(found, rider_id) for rider_id in ids}


def position_key(rider_id: int) -> str:
    """The rider's live position's key in shared_cache(), for reading it with other keys."""
    return _key(rider_id)


def position_in(found: dict, rider_id: int) -> dict | None:
    """The rider's position in what a get_many with position_key(rider_id) returned."""
    entry = found.get(_key(rider_id))
    return entry["p"] if entry else None


def position_set(rider_id: int, position: dict, *, seq: int = 0, at: float = 0.0) -> None:
    """seq: the rider's live fix counter (watchers detect lost pushes by it); at: the fix's
    recorded_at as a POSIX timestamp, the "not older than the last" check."""
    shared_cache().set_many(
        {_key(rider_id): {"p": position, "n": seq, "t": at}, _t_key(rider_id): _micros(at)},
        TTL_SECONDS,
    )


def _micros(at: float) -> int:
    return int(round(at * 1_000_000))


def position_clear(rider_id: int) -> None:
    """Forget the rider's live position and routing state (offline, suspended, rejected).

    Inside a transaction the state is invalidated again when it commits, so that a fix arriving
    meanwhile cannot cache the state as it was before the change.
    """
    shared_cache().delete_many([_key(rider_id), _t_key(rider_id)])
    rider_state_invalidate(rider_id)
    if connections["default"].in_atomic_block:
        transaction.on_commit(lambda: rider_state_invalidate(rider_id))


# --- routing state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RiderState:
    refusal: str  # "" when the rider may share a position, else "not_rider" | "unverified" | ...
    campus_id: int | None = None
    rings: tuple = ()  # the campus bounds: ((lng, lat), ...) per ring, exterior first
    bbox: tuple = (0.0, 0.0, 0.0, 0.0)
    online_since: float = 0.0  # POSIX timestamp: late fixes from before it are not kept
    numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class HotRead:
    """Everything location ingestion needs about one rider, from one cache round trip."""

    state: RiderState
    last_seq: int
    last_at: float | None  # the live position's recorded_at, POSIX
    gen_raw: bytes = b""  # the generation token as Redis holds it (RedisHotPath)


class StateMissing(Exception):
    """The rider's routing state is not cached: only rider_read (which may read the database)
    can go on."""


def _hot_keys(rider_id: int) -> tuple[str, str, str]:
    ns = _ns()
    return (f"live-route:{ns}:{rider_id}", f"live-gen:{ns}:{rider_id}", f"live-pos:{ns}:{rider_id}")


def _hot_read(rider_id: int, values, *, load: bool) -> HotRead:
    stored, gen, pos = values
    state = stored["s"] if stored and stored["g"] == gen else None
    if state is None:
        if not load:
            raise StateMissing(rider_id)
        state = _rebuild(rider_id, gen)
    return HotRead(state, pos["n"] if pos else 0, pos["t"] if pos else None)


def rider_read(rider_id: int, *, load: bool = True) -> HotRead:
    """One cache round trip. On a miss the state is rebuilt from the database, or, with
    load=False (async callers, which must not touch the database on their loop), StateMissing
    is raised."""
    keys = _hot_keys(rider_id)
    found = shared_cache().get_many(keys)
    return _hot_read(rider_id, [found.get(k) for k in keys], load=load)


# --- the same, for the event loop --------------------------------------------------------------
#
# With Redis, a synchronous round trip blocks every socket of the process until Redis answers:
# on a busy machine that is a millisecond or more, twice per fix. The socket consumer uses these
# instead: the same keys and values (Django's key function and serialisation, so that the sync
# API above and Django's cache read them alike), through an asyncio Redis client per loop. Any
# other cache backend (locmem) is in-process: the sync calls are used as they are.


async def arider_read(rider_id: int) -> HotRead:
    """rider_read(load=False) without blocking the loop."""
    hot = redis_hot_path()
    if hot is None:
        return rider_read(rider_id, load=False)
    return await hot.read(rider_id, fresh=True)


async def aposition_set(rider_id: int, position: dict, *, seq: int, at: float) -> None:
    hot = redis_hot_path()
    if hot is None:
        position_set(rider_id, position, seq=seq, at=at)
        return
    pipe = hot.client.pipeline(transaction=False)
    for key, value in position_set_commands(rider_id, position, seq=seq, at=at):
        pipe.set(key, value, ex=TTL_SECONDS)
    await pipe.execute()


def async_client():
    """The loop's asyncio Redis client on the cache's server, or None (not Redis)."""
    hot = redis_hot_path()
    return hot.client if hot else None


def position_set_commands(rider_id: int, position: dict, *, seq: int, at: float):
    """[(key, value)] of position_set as Redis sees them, for a pipeline (TTL_SECONDS)."""
    cache = shared_cache()
    value = cache._cache._serializer.dumps({"p": position, "n": seq, "t": at})
    return [
        (cache.make_key(_key(rider_id)), value),
        (cache.make_key(_t_key(rider_id)), _micros(at)),
    ]


# Sets the position and publishes the fix if, and only if, the rider's routing state and live
# position are still what the caller validated against: the generation token is unchanged and
# no fresher fix was stored meanwhile (another process, the HTTP fallback). Else nothing, 0.
_COMMIT_SCRIPT = """
local gen = redis.call('GET', KEYS[1])
if (gen or '') ~= ARGV[1] then return 0 end
local t = redis.call('GET', KEYS[2])
if t and tonumber(t) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
for i = 6, #ARGV do redis.call('PUBLISH', ARGV[i], ARGV[5]) end
return 1
"""
_COMMIT_SHA = hashlib.sha1(_COMMIT_SCRIPT.encode()).hexdigest()
MEMO_SECONDS = 30.0
MEMO_MAX = 10_000


class _RespPipe(asyncio.Protocol):
    """One pipelined Redis connection for the hot path's script: replies are matched to commands
    in order. A tenth of redis-py's CPU per call, which takes a connection from a pool, a lock
    and a timeout context for every command. The commands of one turn of the event loop (a
    batch of fixes read from the riders' sockets) go out in one write: under load a write
    system call per fix was a tenth of the process's CPU."""

    def __init__(self, url: str):
        from redis.connection import parse_url

        self.params = parse_url(url)
        self.transport = None
        self.pending: deque = deque()
        self.buffer = bytearray()
        self._connecting = None
        self._out: list[bytes] = []  # commands of this turn of the loop, written by _write_out

    async def call(self, *args) -> object:
        if self.transport is None or self.transport.is_closing():
            await self._connect()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append(future)
        if not self._out:
            loop.call_soon(self._write_out)
        self._out.append(_resp(args))
        return await future

    def _write_out(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        try:
            await asyncio.shield(self._connecting)
        finally:
            self._connecting = None

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        p = self.params
        if p.get("path"):
            await loop.create_unix_connection(lambda: self, p["path"])
        else:
            await loop.create_connection(lambda: self, p.get("host", "localhost"), p.get("port"))
        hello = []
        if p.get("password"):
            user = p.get("username")
            hello.append(("AUTH", user, p["password"]) if user else ("AUTH", p["password"]))
        if p.get("db"):
            hello.append(("SELECT", p["db"]))
        futures = []
        for args in hello:
            futures.append(asyncio.get_running_loop().create_future())
            self.pending.append(futures[-1])
            self.transport.write(_resp(args))
        for future in futures:
            await future

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.pending:
            parsed = _parse_reply(self.buffer)
            if parsed is None:
                return
            value, used = parsed
            del self.buffer[:used]
            future = self.pending.popleft()
            if not future.done():
                if isinstance(value, Exception):
                    future.set_exception(value)
                else:
                    future.set_result(value)

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.buffer.clear()
        self._out.clear()  # never to be matched with a new connection's replies
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"Redis connection lost: {exc!r}"))


def _resp(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if not isinstance(arg, bytes):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _parse_reply(buffer: bytearray):
    """(value, bytes used) for the first complete simple reply in `buffer`, or None."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    kind, line = buffer[:1], bytes(buffer[1:end])
    if kind == b":":
        return int(line), end + 2
    if kind == b"+":
        return line.decode(), end + 2
    if kind == b"-":
        return RuntimeError(line.decode(errors="replace")), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2  # nil
        if len(buffer) < end + 2 + size + 2:
            return None
        return bytes(buffer[end + 2 : end + 2 + size]), end + 2 + size + 2
    raise ValueError(f"unexpected Redis reply {bytes(buffer[:40])!r}")


class RedisHotPath:
    """The socket consumers' path to the cache when it is one Redis server, per event loop.

    A fix costs one round trip: the rider's routing state and last position are remembered
    from the previous fix (at most MEMO_SECONDS), and a script stores the new position and
    publishes it only if neither changed in Redis meanwhile (commit); when one did, the caller
    reads them afresh (read) and validates again.
    """

    def __init__(self, client, cache, url: str):
        self.client, self.cache = client, cache
        self.memo: dict[int, tuple[HotRead, float]] = {}
        self._pipe = _RespPipe(url)
        self._loads = cache._cache._serializer.loads
        self._dumps = cache._cache._serializer.dumps

    async def read(self, rider_id: int, *, fresh: bool = False) -> HotRead:
        """StateMissing when the routing state must be loaded from the database."""
        now = time.monotonic()
        if not fresh:
            found = self.memo.get(rider_id)
            if found is not None and now - found[1] < MEMO_SECONDS:
                return found[0]
        make_key = self.cache.make_key
        raw = await self.client.mget([make_key(k) for k in _hot_keys(rider_id)])
        loads = self._loads
        values = [None if v is None else loads(v) for v in raw]
        hot = _hot_read(rider_id, values, load=False)
        hot = HotRead(hot.state, hot.last_seq, hot.last_at, raw[1] or b"")
        if len(self.memo) > MEMO_MAX:  # riders come and go: drop what has aged out
            self.memo = {k: v for k, v in self.memo.items() if now - v[1] < MEMO_SECONDS}
        self.memo[rider_id] = (hot, now)
        return hot

    async def commit(
        self, rider_id: int, hot: HotRead, position: dict, *, seq: int, at: float, publish
    ) -> bool:
        """Store the fix and publish `publish` = (data, [channel, ...]) if `hot` still holds."""
        make_key = self.cache.make_key
        data, channels = publish
        value = self._dumps({"p": position, "n": seq, "t": at})
        args = (
            3,
            make_key(_gen_key(rider_id)),
            make_key(_t_key(rider_id)),
            make_key(_key(rider_id)),
            hot.gen_raw,
            _micros(at),
            value,
            TTL_SECONDS,
            data,
            *channels,
        )
        # By its digest: Redis neither receives nor hashes the script's text for every fix. A
        # server that does not know it yet (new, restarted, SCRIPT FLUSH) gets it once by EVAL.
        try:
            done = await self._pipe.call("EVALSHA", _COMMIT_SHA, *args)
        except RuntimeError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            done = await self._pipe.call("EVAL", _COMMIT_SCRIPT, *args)
        if not done:
            self.memo.pop(rider_id, None)
            return False
        found = self.memo.get(rider_id)
        if found is not None:
            self.memo[rider_id] = (HotRead(hot.state, seq, at, hot.gen_raw), found[1])
        return True


_hot_paths: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_hot_path() -> RedisHotPath | None:
    """The running loop's RedisHotPath, or None when the cache is not a single Redis server."""
    cache = shared_cache()
    inner = getattr(cache, "_cache", None)
    if not isinstance(cache, RedisCache) or len(getattr(inner, "_servers", ())) != 1:
        return None
    loop = asyncio.get_running_loop()
    hot = _hot_paths.get(loop)
    if hot is None or hot.cache is not cache:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(inner._servers[0])
        hot = _hot_paths[loop] = RedisHotPath(client, cache, inner._servers[0])
    return hot


def rider_state_invalidate(rider_id: int) -> None:
    shared_cache().set(_gen_key(rider_id), os.urandom(6).hex(), GEN_TTL_SECONDS)


def order_routing_changed(number: str, rider_id: int | None) -> None:
    """An order changed status or rider: its current rider and whichever rider was routing
    fixes to it (released, reassigned) must rebuild their routing state."""
    previous = shared_cache().get(_order_key(number))
    for rid in {rider_id, previous} - {None}:
        rider_state_invalidate(rid)


def _rebuild(rider_id: int, gen) -> RiderState:
    from orders.models import Order
    from orders.status import Status
    from riders.models import RiderProfile
    from tracking.privacy import ON_THE_WAY_FROM_PICKUP, customer_visible_statuses

    profile = (
        RiderProfile.objects.select_related("campus")
        .only(
            "verified", "online", "online_since", "campus__bounds", "campus__tracking_visible_from"
        )
        .filter(user_id=rider_id)
        .first()
    )
    if profile is None:
        state = RiderState("not_rider")
    elif not profile.verified:
        state = RiderState("unverified")
    elif not profile.online:
        state = RiderState("offline")
    else:
        statuses = (ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}) & customer_visible_statuses(
            profile.campus
        )
        numbers = tuple(
            Order.objects.filter(rider_id=rider_id, status__in=statuses)
            .order_by("pk")
            .values_list("number", flat=True)
        )
        since = profile.online_since.timestamp() if profile.online_since else 0.0
        bounds = profile.campus.bounds
        state = RiderState(
            "",
            profile.campus_id,
            online_since=since,
            numbers=numbers,
            rings=tuple(tuple((float(x), float(y)) for x, y in ring) for ring in bounds.coords),
            bbox=tuple(bounds.extent),
        )
        if numbers:
            routes = {_order_key(n): rider_id for n in numbers}
            shared_cache().set_many(routes, STATE_TTL_SECONDS * 2)
    if not state.refusal:  # refusals are not kept: going online counts from the next fix
        shared_cache().set(_state_key(rider_id), {"s": state, "g": gen}, STATE_TTL_SECONDS)
    return state


def inside_bounds(state: RiderState, lng: float, lat: float) -> bool:
    """Campus.contains, on the bounds cached with the rider's state: even-odd ray casting over
    the polygon's rings (holes included), a few microseconds where a GEOS call through ctypes
    costs tens. Points exactly on the boundary may fall either way."""
    min_x, min_y, max_x, max_y = state.bbox
    if not (min_x < lng < max_x and min_y < lat < max_y):
        return False
    inside = False
    for ring in state.rings:
        x1, y1 = ring[-1]
        for x2, y2 in ring:
            if (y2 > lat) != (y1 > lat) and lng < (x1 - x2) * (lat - y2) / (y1 - y2) + x2:
                inside = not inside
            x1, y1 = x2, y2
    return inside
