"""Rider location ingestion: validate, keep the live position, record the track, push on commit."""

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders.errors import NotAllowed, OrderError
from orders.models import Order
from orders.status import Status
from riders.models import RiderProfile
from tracking import broadcast, live
from tracking.models import TrackPoint
from tracking.privacy import ON_THE_WAY_FROM_PICKUP, customer_visible_statuses

MAX_CLOCK_SKEW = timedelta(minutes=2)


class LocationRejected(OrderError):
    code = "bad_location"


class StaleLocation(LocationRejected):
    http_status = 409
    code = "stale_location"


@transaction.atomic
def location_record(
    *, rider, lat: float, lng: float, recorded_at: datetime, accuracy: float | None = None
) -> dict:
    # Read afresh: a socket keeps its user (and a cached profile) for hours, during which the
    # rider may go offline or be suspended.
    profile = RiderProfile.objects.select_related("campus").filter(user_id=rider.pk).first()
    if profile is None or not profile.verified:
        raise NotAllowed(_("Only approved riders share their location."))
    if not profile.online:
        raise NotAllowed(_("You are offline: go online to share your location."))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise LocationRejected(_("This is not a valid position."))
    if not profile.campus.contains(lng, lat):
        raise LocationRejected(_("This position is outside the campus."))
    if timezone.is_naive(recorded_at):
        recorded_at = timezone.make_aware(recorded_at, timezone.get_current_timezone())
    if recorded_at > timezone.now() + MAX_CLOCK_SKEW:
        raise LocationRejected(_("This position is timestamped in the future."))
    if profile.online_since and recorded_at < profile.online_since - MAX_CLOCK_SKEW:
        raise LocationRejected(_("This position was taken while you were offline."))
    try:
        recorded_at = recorded_at.astimezone(UTC)
    except OverflowError:
        raise LocationRejected(_("This position has an impossible timestamp.")) from None
    last = live.position_get(rider.pk)
    if last and recorded_at <= datetime.fromisoformat(last["recorded_at"]):
        raise StaleLocation(_("This position is older than the last one received."))

    TrackPoint.objects.create(
        rider=rider,
        point=f"SRID=4326;POINT({lng} {lat})",
        accuracy_m=accuracy,
        recorded_at=recorded_at,
    )
    position = {
        "rider": rider.pk,
        "lat": round(lat, 7),
        "lng": round(lng, 7),
        "accuracy": accuracy,
        "recorded_at": recorded_at.isoformat(),
    }
    live.position_set(rider.pk, position)
    visible = customer_visible_statuses(profile.campus)
    numbers = list(
        Order.objects.filter(
            rider=rider, status__in=(ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}) & visible
        ).values_list("number", flat=True)
    )
    broadcast.location_changed_on_commit(numbers, position)
    return position
