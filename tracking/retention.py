"""How long recorded positions are kept, and the purge that enforces it.

* Raw fixes (TrackPoint) are kept TRACK_RETENTION_DAYS (default 7). Then they are deleted, all
  of them, after one thing is saved: for each order, the rider's track while they carried it (the
  windows of tracking.selectors.order_windows) is downsampled to one point per KEEP_EVERY_S
  seconds or KEEP_EVERY_M metres (whichever comes first) and archived for disputes
  (ArchivedTrackPoint). Fixes taken while the rider carried no order are not kept at all.
* Archived tracks and order chats are kept TRACK_ARCHIVE_DAYS (default 180), then deleted.
* The track access log (who replayed which track, and why) is never purged.

Run `manage.py purge_tracks` daily (README: cron line and systemd timer). It is idempotent: an
interrupted run is finished by the next one (archived points are unique per order, rider and
time, and each window resumes after its last archived point).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from campus.geo import haversine_m
from orders.models import Order, OrderEvent
from orders.status import FINAL, WITH_RIDER, Status
from tracking.models import ArchivedTrackPoint, ChatMessage, TrackPoint
from tracking.selectors import order_windows

KEEP_EVERY_S = 30
KEEP_EVERY_M = 20
DELETE_BATCH = 5000


def retention_days() -> int:
    return int(getattr(settings, "TRACK_RETENTION_DAYS", 7))


def archive_days() -> int:
    return int(getattr(settings, "TRACK_ARCHIVE_DAYS", 180))


def downsample(
    points: Iterable[tuple],
    *,
    last: tuple | None = None,
    every_s: float = KEEP_EVERY_S,
    every_m: float = KEEP_EVERY_M,
) -> list[tuple]:
    """Keep a point when it is `every_s` seconds or `every_m` metres from the last one kept, and
    always the window's last point. points: (posix time, lng, lat, ...) in time order; `last`:
    the point kept before these (an earlier run's)."""
    points = list(points)
    kept: list[tuple] = []
    for i, p in enumerate(points):
        final = i == len(points) - 1
        if last is None or final:
            take = last is None or p[0] > last[0]
        else:
            take = p[0] - last[0] >= every_s or haversine_m(last[1], last[2], p[1], p[2]) >= every_m
        if take:
            kept.append(p)
            last = p
    return kept


@dataclass
class PurgeReport:
    cutoff: datetime
    orders: int = 0
    archived: int = 0
    raw_deleted: int = 0
    archive_deleted: int = 0
    chat_deleted: int = 0
    dry_run: bool = False

    def line(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"raw fixes before {self.cutoff:%Y-%m-%d %H:%M}: {verb} {self.raw_deleted}, "
            f"{'would archive' if self.dry_run else 'archived'} {self.archived} point(s) of "
            f"{self.orders} order(s); archived points {verb} {self.archive_deleted}, "
            f"chat messages {verb} {self.chat_deleted}"
        )


def _orders_to_archive(oldest: datetime, cutoff: datetime):
    """Orders whose riders' windows may hold raw fixes in [oldest, cutoff)."""
    recent = OrderEvent.objects.filter(created_at__gte=oldest).values("order_id")
    accepted = OrderEvent.objects.filter(
        new_status__in=[Status.ACCEPTED, Status.RELAY_ACCEPTED], created_at__lt=cutoff
    ).values("order_id")
    return (
        Order.objects.filter(Q(pk__in=recent) | Q(status__in=WITH_RIDER))
        .filter(pk__in=accepted)
        .prefetch_related("events")
        .order_by("pk")
    )


def _archive_order(order, *, oldest: datetime, cutoff: datetime, dry_run: bool) -> int:
    events = sorted(order.events.all(), key=lambda e: (e.created_at, e.pk))
    added = 0
    for window in order_windows(order, events):
        end = min(window.end, cutoff) if window.end else cutoff
        if end < oldest or window.start >= cutoff:
            continue
        last_row = (
            ArchivedTrackPoint.objects.filter(order=order, rider_id=window.rider_id)
            .order_by("-recorded_at")
            .first()
        )
        start = window.start
        last = None
        if last_row is not None and last_row.recorded_at >= start:
            start = last_row.recorded_at
            last = (last_row.recorded_at.timestamp(), last_row.point.x, last_row.point.y)
        raw = (
            TrackPoint.objects.filter(
                rider_id=window.rider_id, recorded_at__gte=start, recorded_at__lte=end
            )
            .filter(recorded_at__lt=cutoff)
            .order_by("recorded_at")
            .only("point", "accuracy_m", "recorded_at")
        )
        points = [
            (p.recorded_at.timestamp(), p.point.x, p.point.y, p.accuracy_m, p.recorded_at)
            for p in raw
        ]
        kept = downsample(points, last=last)
        added += len(kept)
        if kept and not dry_run:
            ArchivedTrackPoint.objects.bulk_create(
                [
                    ArchivedTrackPoint(
                        order=order,
                        rider_id=window.rider_id,
                        point=Point(lng, lat, srid=4326),
                        accuracy_m=accuracy,
                        recorded_at=at,
                    )
                    for _t, lng, lat, accuracy, at in kept
                ],
                ignore_conflicts=True,
            )
    return added


def _delete_in_batches(qs, dry_run: bool) -> int:
    if dry_run:
        return qs.count()
    deleted = 0
    while True:
        ids = list(qs.values_list("pk", flat=True)[:DELETE_BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += qs.model.objects.filter(pk__in=ids).delete()[0]


def tracks_purge(
    *, now: datetime | None = None, days: int | None = None, dry_run: bool = False
) -> PurgeReport:
    """Archive the downsampled order tracks, then delete raw fixes older than the retention
    period, and archived tracks and chats older than the archive period."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=retention_days() if days is None else days)
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    oldest = TrackPoint.objects.filter(recorded_at__lt=cutoff).aggregate(t=Min("recorded_at"))["t"]
    if oldest is not None:
        for order in _orders_to_archive(oldest, cutoff):
            with transaction.atomic():
                added = _archive_order(order, oldest=oldest, cutoff=cutoff, dry_run=dry_run)
            if added:
                report.orders += 1
                report.archived += added
        report.raw_deleted = _delete_in_batches(
            TrackPoint.objects.filter(recorded_at__lt=cutoff), dry_run
        )
    archive_cutoff = now - timedelta(days=archive_days())
    report.archive_deleted = _delete_in_batches(
        ArchivedTrackPoint.objects.filter(recorded_at__lt=archive_cutoff), dry_run
    )
    # A chat is deleted with the rest of its order's archive, once the order is over.
    old_chats = (
        ChatMessage.objects.filter(order__status__in=FINAL)
        .values("order_id")
        .annotate(last=Max("created_at"))
        .filter(last__lt=archive_cutoff)
        .values("order_id")
    )
    report.chat_deleted = _delete_in_batches(
        ChatMessage.objects.filter(order_id__in=old_chats), dry_run
    )
    return report
