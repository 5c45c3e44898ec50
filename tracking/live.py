"""What the tracking hot path knows, kept in the cache (Redis in production, locmem by default).

A rider's fix is validated and routed without a database round trip: one cache read brings
the rider's live position and their *routing state* (may they share a position, the campus
bounds, the order numbers their fixes go to), one cache write stores the new position.

The routing state is rebuilt from the database on a miss and invalidated when it changes:
order transitions (tracking.broadcast.order_changed_on_commit), going offline, suspension
(position_clear, which riders.services calls). Invalidation bumps a per-rider generation
token instead of deleting, so a rebuild that raced with the change is never trusted: it is
stored under the generation it started from. Refusals (offline, not approved) are cached for
a few seconds only, so going online is seen at once; a positive state lives STATE_TTL_SECONDS
at most, the safety net for changes made behind the services' back (the admin, the shell).

Keys carry a short namespace derived from the database name, so that two databases sharing
one Redis (a benchmark's temporary database and a development one, say) never read each
other's riders.
"""

import hashlib
import os
from dataclasses import dataclass

from django.contrib.gis.geos import GEOSGeometry, Point
from django.core.cache import cache
from django.db import connections, transaction

TTL_SECONDS = 60 * 60
STATE_TTL_SECONDS = 120
REFUSAL_TTL_SECONDS = 2
GEN_TTL_SECONDS = 2 * STATE_TTL_SECONDS

_namespaces: dict[str, str] = {}


def _ns() -> str:
    name = str(connections["default"].settings_dict.get("NAME") or "")
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


def _order_key(number: str) -> str:
    return f"live-order-rider:{_ns()}:{number}"


# --- live positions ----------------------------------------------------------------------------


def position_get(rider_id: int) -> dict | None:
    """The rider's last live position as pushed to watchers, or None."""
    entry = cache.get(_key(rider_id))
    return entry["p"] if entry else None


def position_set(rider_id: int, position: dict, *, seq: int = 0, at: float = 0.0) -> None:
    """seq: the rider's live fix counter (watchers detect lost pushes by it); at: the fix's
    recorded_at as a POSIX timestamp, the "not older than the last" check."""
    cache.set(_key(rider_id), {"p": position, "n": seq, "t": at}, TTL_SECONDS)


def position_clear(rider_id: int) -> None:
    """Forget the rider's live position and routing state (offline, suspended, rejected).

    Inside a transaction the state is invalidated again when it commits, so that a fix arriving
    meanwhile cannot cache the state as it was before the change.
    """
    cache.delete(_key(rider_id))
    rider_state_invalidate(rider_id)
    if connections["default"].in_atomic_block:
        transaction.on_commit(lambda: rider_state_invalidate(rider_id))


# --- routing state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RiderState:
    refusal: str  # "" when the rider may share a position, else "not_rider" | "unverified" | ...
    campus_id: int | None = None
    bounds_wkb: bytes = b""
    online_since: float = 0.0  # POSIX timestamp: late fixes from before it are not kept
    numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class HotRead:
    """Everything location ingestion needs about one rider, from one cache round trip."""

    state: RiderState
    last_seq: int
    last_at: float | None  # the live position's recorded_at, POSIX


def rider_read(rider_id: int) -> HotRead:
    keys = (_state_key(rider_id), _gen_key(rider_id), _key(rider_id))
    found = cache.get_many(keys)
    stored = found.get(keys[0])
    gen = found.get(keys[1])
    state = stored["s"] if stored and stored["g"] == gen else None
    if state is None:
        state = _rebuild(rider_id, gen)
    pos = found.get(keys[2])
    return HotRead(state, pos["n"] if pos else 0, pos["t"] if pos else None)


def rider_state_invalidate(rider_id: int) -> None:
    cache.set(_gen_key(rider_id), os.urandom(6).hex(), GEN_TTL_SECONDS)


def order_routing_changed(number: str, rider_id: int | None) -> None:
    """An order changed status or rider: its current rider and whichever rider was routing
    fixes to it (released, reassigned) must rebuild their routing state."""
    previous = cache.get(_order_key(number))
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
        state = RiderState("", profile.campus_id, bytes(profile.campus.bounds.wkb), since, numbers)
        if numbers:
            cache.set_many({_order_key(n): rider_id for n in numbers}, STATE_TTL_SECONDS * 2)
    ttl = REFUSAL_TTL_SECONDS if state.refusal else STATE_TTL_SECONDS
    cache.set(_state_key(rider_id), {"s": state, "g": gen}, ttl)
    return state


_prepared: dict[bytes, object] = {}


def inside_bounds(state: RiderState, lng: float, lat: float) -> bool:
    """Campus.contains on the cached bounds (a prepared geometry per process)."""
    prepared = _prepared.get(state.bounds_wkb)
    if prepared is None:
        if len(_prepared) > 64:
            _prepared.clear()
        prepared = _prepared[state.bounds_wkb] = GEOSGeometry(memoryview(state.bounds_wkb)).prepared
    return prepared.contains(Point(lng, lat, srid=4326))
