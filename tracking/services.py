"""Rider location ingestion: validate, keep the live position, record the track, push.

The hot path (location_ingest) makes no database round trip: the rider's routing state and
last position come from the cache (tracking.live), the track is appended in batches
(tracking.history), the pushed message is serialised once (tracking.broadcast).

Late fixes (a phone's offline queue arriving after fresher ones): a fix older than the rider's
live position never moves the live marker back, so it is refused as a live position
(StaleLocation, 409 "stale_location"), but it is still kept in the track, where fixes are read in
recorded_at order. A fix equal to the live one is a resend and is dropped; a fix taken before
the rider went online is refused: riders are never tracked offline.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from orders.errors import NotAllowed, OrderError
from tracking import broadcast, history, live, stats

MAX_CLOCK_SKEW = timedelta(minutes=2)
_SKEW_SECONDS = MAX_CLOCK_SKEW.total_seconds()
# A phone's offline queue older than this is not worth a track point (and no shift is longer).
MAX_FIX_AGE = timedelta(hours=24)
_MAX_AGE_SECONDS = MAX_FIX_AGE.total_seconds()


class LocationRejected(OrderError):
    code = "bad_location"


class StaleLocation(LocationRejected):
    http_status = 409
    code = "stale_location"

    def __init__(self, message=None, *, in_track: bool = False):
        self.in_track = in_track
        super().__init__(message)


def _refusal_message(refusal: str) -> str:
    if refusal == "offline":
        return _("You are offline: go online to share your location.")
    return _("Only approved riders share their location.")


@dataclass(frozen=True)
class Accepted:
    """A fix that became the rider's live position, and the message that pushes it."""

    position: dict
    groups: list[str]
    message: dict
    payload: dict  # what watchers receive, as a dict (message["text"] is its JSON)


def location_ingest(
    *,
    rider_id: int,
    lat: float,
    lng: float,
    recorded_at: datetime,
    accuracy: float | None = None,
    seq: int | None = None,
    batch: bool = False,
) -> Accepted:
    """Validate one fix and make it live. Raises LocationRejected / StaleLocation / NotAllowed.

    Pushing is the caller's job (the socket consumer awaits it, location_record does it on
    commit), so that the same work serves both doors. batch: the track point may wait for the
    next batch (tracking.history); otherwise it is written before this returns.
    """
    hot = live.rider_read(rider_id)
    fix = _accept(hot, rider_id, lat, lng, recorded_at, accuracy, seq, batch)
    live.position_set(rider_id, fix.position, seq=fix.message["n"], at=fix.at)
    _made_live(fix, batch)
    return fix.accepted


async def alocation_ingest(
    *,
    rider_id: int,
    lat: float,
    lng: float,
    recorded_at: datetime,
    accuracy: float | None = None,
    seq: int | None = None,
    layer=None,
) -> Accepted:
    """location_ingest for the socket consumer, on its event loop, pushes included (through
    `layer`): the cache is never waited for with the loop blocked, the track point is batched,
    and no database is touched (live.StateMissing when the rider's routing state is not
    cached: location_ingest, in a thread, loads it).

    With Redis for both the cache and the pub/sub layer (production), a fix is one round trip:
    tracking.live.RedisHotPath validates against what it remembers of the rider and stores and
    publishes the fix only if that still holds in Redis; else it reads afresh and tries again.
    """
    hot_path = live.redis_hot_path()
    names = broadcast.pubsub_channel_names(layer, hot_path.client) if hot_path else None
    if names is not None:
        for fresh in (False, True):
            hot = await hot_path.read(rider_id, fresh=fresh)
            fix = _accept(hot, rider_id, lat, lng, recorded_at, accuracy, seq, True)
            message = fix.message
            publish = (layer.serialize(message), [names(g) for g in fix.accepted.groups])
            if await hot_path.commit(
                rider_id, hot, fix.position, seq=message["n"], at=fix.at, publish=publish
            ):
                _made_live(fix, True)
                stats.incr("pushes", len(publish[1]))
                return fix.accepted
        raise live.StateMissing(rider_id)  # changed under us twice: a thread settles it
    hot = await live.arider_read(rider_id)
    fix = _accept(hot, rider_id, lat, lng, recorded_at, accuracy, seq, True)
    await live.aposition_set(rider_id, fix.position, seq=fix.message["n"], at=fix.at)
    _made_live(fix, True)
    await broadcast.push(layer, fix.accepted.groups, fix.message)
    return fix.accepted


@dataclass(frozen=True)
class _Fix:
    accepted: Accepted
    at: float
    track: tuple  # history.add's arguments but `at`

    @property
    def position(self) -> dict:
        return self.accepted.position

    @property
    def message(self) -> dict:
        return self.accepted.message


def _made_live(fix: _Fix, batch: bool) -> None:
    rider_id, lng, lat, accuracy = fix.track
    history.add(rider_id=rider_id, lng=lng, lat=lat, accuracy=accuracy, at=fix.at, batch=batch)
    stats.incr("fixes.live")


def _accept(hot, rider_id, lat, lng, recorded_at, accuracy, seq, batch) -> _Fix:
    """The rules, on what the cache said about the rider (live.HotRead). A late fix is kept
    for the track here (batch as in history.add); a live one by the caller, once stored."""
    stats.incr("fixes.received")
    try:
        _check_number(lat, -90, 90)
        _check_number(lng, -180, 180)
        state = hot.state
        if state.refusal:
            raise NotAllowed(_refusal_message(state.refusal))
        if not live.inside_bounds(state, lng, lat):
            raise LocationRejected(_("This position is outside the campus."))
        at = _timestamp(recorded_at)
        now = datetime.now(UTC).timestamp()
        if at > now + _SKEW_SECONDS:
            raise LocationRejected(_("This position is timestamped in the future."))
        if at < max(state.online_since - _SKEW_SECONDS, now - _MAX_AGE_SECONDS):
            raise LocationRejected(_("This position was taken while you were offline."))
        if hot.last_at is not None and at <= hot.last_at:
            in_track = at < hot.last_at
            if in_track:
                history.add(
                    rider_id=rider_id, lng=lng, lat=lat, accuracy=accuracy, at=at, batch=batch
                )
                stats.incr("fixes.late_in_track")
            raise StaleLocation(
                _(
                    "This position is older than the last one received: it was added to the "
                    "track but is not shown live."
                )
                if in_track
                else _("This position was already received."),
                in_track=in_track,
            )
    except OrderError as exc:
        stats.incr(f"fixes.refused.{exc.code}")
        raise

    position = {
        "rider": rider_id,
        "lat": round(lat, 7),
        "lng": round(lng, 7),
        "accuracy": accuracy,
        "recorded_at": datetime.fromtimestamp(at, UTC).isoformat(),
    }
    n = hot.last_seq + 1
    payload = broadcast.location_payload(position, seq)
    accepted = Accepted(
        position,
        broadcast.location_groups(state.numbers),
        broadcast.location_message(rider_id=rider_id, n=n, payload=payload),
        payload,
    )
    return _Fix(accepted, at, (rider_id, lng, lat, accuracy))


def _timestamp(recorded_at: datetime) -> float:
    """POSIX seconds; a timestamp no clock can give (year 1 in UTC+8, say) is refused."""
    try:
        if timezone.is_naive(recorded_at):
            recorded_at = timezone.make_aware(recorded_at, timezone.get_current_timezone())
        at = recorded_at.timestamp()
        datetime.fromtimestamp(at, UTC)
    except (OverflowError, ValueError, OSError):
        raise LocationRejected(_("This position has an impossible timestamp.")) from None
    return at


def _check_number(value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise LocationRejected(_("This is not a valid position."))


def location_record(
    *, rider, lat: float, lng: float, recorded_at: datetime, accuracy: float | None = None
) -> dict:
    """One fix through HTTP (the fallback when sockets are blocked) or any sync caller.

    The track point is written before this returns (also for a late fix, which then raises
    StaleLocation); the push goes out when the surrounding transaction commits.
    """
    accepted = location_ingest(
        rider_id=rider.pk, lat=lat, lng=lng, recorded_at=recorded_at, accuracy=accuracy
    )
    broadcast.location_changed_on_commit(accepted.groups, accepted.payload)
    return accepted.position
