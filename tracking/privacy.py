"""When may whom see a rider's position: the location privacy rules, in one place."""

from django.utils.translation import gettext as _

from orders.status import Status

ON_THE_WAY_FROM_PICKUP = {
    Status.PICKED_UP,
    Status.AT_STATION,
    Status.RELAY_ACCEPTED,
    Status.DELIVERING,
}


def customer_visible_statuses(campus) -> set[str]:
    """A campus setting: the customer sees the rider from acceptance or from pickup, until
    delivery. Never before, never after."""
    if campus.tracking_visible_from == Status.ACCEPTED:
        return ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}
    return set(ON_THE_WAY_FROM_PICKUP)


def rider_visible_to(order, viewer) -> bool:
    if order.rider_id is None or not viewer.is_authenticated:
        return False
    if viewer.pk == order.rider_id:
        return order.status in ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}
    if viewer.is_staff:
        return order.status in ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}
    if viewer.pk == order.customer_id:
        return order.status in customer_visible_statuses(order.campus)
    return False


# --- recorded tracks: operators only, every look logged ----------------------------------------

REPLAYABLE = {Status.DELIVERED, Status.COMPLETED, Status.CANCELLED, Status.EXPIRED}


def can_replay_track(user) -> bool:
    """Only operators replay a rider's recorded track (disputes), never customers or riders."""
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


def track_replay(*, order, operator, reason: str, note: str):
    """Open an order's recorded track for a dispute: the access is logged first (who, when, why,
    how many points), then the track is returned. Returns (log, points)."""
    from orders.errors import NotAllowed, StepNotReady
    from tracking.models import TrackAccessLog
    from tracking.selectors import order_track

    if not can_replay_track(operator):
        raise NotAllowed()
    if order.status not in REPLAYABLE:
        raise StepNotReady(_("This order is still running: follow it on the live map."))
    points = order_track(order)
    log = TrackAccessLog.objects.create(
        user=operator, order=order, reason=reason, note=note.strip()[:300], points=len(points)
    )
    return log, points
