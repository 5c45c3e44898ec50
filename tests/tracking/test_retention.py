"""Retention of recorded positions (tracking/retention.py, `manage.py purge_tracks`): raw fixes
go after TRACK_RETENTION_DAYS, a downsampled track of each order stays for disputes until
TRACK_ARCHIVE_DAYS, fixes outside any order are not kept, chats go with the archive."""

from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.utils import timezone

from campus.geo import haversine_m
from orders import services
from orders.status import Status
from tests import factories
from tests.factories import DX, LAT0, LNG0
from tracking import chat, retention
from tracking.models import ArchivedTrackPoint, ChatMessage, TrackPoint
from tracking.selectors import order_track

METRES_PER_DEG = haversine_m(LNG0, LAT0, LNG0 + DX, LAT0) / DX


@contextmanager
def clock(moment):
    """Everything stamped (order events, delivery times) as if it happened at `moment`."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def fixes(rider, start, *, seconds: int, every: int = 3, speed: float = 1.5, x0: float = -2.0):
    """A rider's raw fixes every `every` s for `seconds`, riding east at `speed` m/s."""
    rows = [
        TrackPoint(
            rider=rider,
            point=Point(LNG0 + x0 * DX + speed * t / METRES_PER_DEG, LAT0, srid=4326),
            accuracy_m=5,
            recorded_at=start + timedelta(seconds=t),
        )
        for t in range(0, seconds + 1, every)
    ]
    TrackPoint.objects.bulk_create(rows)
    return rows


@pytest.fixture
def old_delivery(order, rider_male, student):
    """An order carried 8 days ago from 12:00:00 to 12:10:00, with fixes before, during, after."""
    start = timezone.now().replace(microsecond=0) - timedelta(days=8)
    with clock(start):
        order = services.order_accept(order=order, rider=rider_male)
    with clock(start + timedelta(minutes=1)):
        order = services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
        order = services.order_transition(order=order, to=Status.DELIVERING, actor=rider_male)
    with clock(start + timedelta(minutes=10)):
        order = services.order_transition(order=order, to=Status.DELIVERED, actor=rider_male)
    fixes(rider_male, start - timedelta(minutes=5), seconds=240)  # before: no order
    fixes(rider_male, start, seconds=480)  # riding, 8 minutes
    fixes(rider_male, start + timedelta(seconds=483), seconds=117, speed=0)  # at the door
    fixes(rider_male, start + timedelta(minutes=15), seconds=120)  # after: no order
    return order


# --- downsampling ------------------------------------------------------------------------------


def _pts(step_m: float, every_s: float, n: int) -> list[tuple]:
    return [(i * every_s, LNG0 + i * step_m / METRES_PER_DEG, LAT0) for i in range(n)]


def test_downsample_keeps_a_point_every_20_m_while_moving():
    kept = retention.downsample(_pts(5.001, 3, 41))  # 200 m in 2 minutes
    gaps = [haversine_m(a[1], a[2], b[1], b[2]) for a, b in zip(kept, kept[1:], strict=False)]
    assert len(kept) == 11 and all(g == pytest.approx(20, abs=0.5) for g in gaps)


def test_downsample_keeps_a_point_every_30_s_standing_and_always_the_last():
    kept = retention.downsample(_pts(0, 3, 41))  # 2 minutes at a door
    assert [p[0] for p in kept] == [0, 30, 60, 90, 120]
    ending = retention.downsample(_pts(0, 3, 12))
    assert [p[0] for p in ending] == [0, 30, 33]  # the window's last point is kept


def test_downsample_resumes_after_the_last_point_kept():
    points = _pts(5.001, 3, 41)
    again = retention.downsample(points[10:], last=points[8])
    assert again[0][0] == points[12][0]  # 20 m after the earlier run's last point


# --- the purge ---------------------------------------------------------------------------------


def test_purge_archives_each_orders_downsampled_track_and_deletes_raw_fixes(old_delivery):
    recent = fixes(old_delivery.rider, timezone.now() - timedelta(days=1), seconds=30)
    before = TrackPoint.objects.count()
    report = retention.tracks_purge()
    assert report.raw_deleted == before - len(recent)
    assert set(TrackPoint.objects.values_list("pk", flat=True)) == {p.pk for p in recent}
    archived = list(ArchivedTrackPoint.objects.filter(order=old_delivery).order_by("recorded_at"))
    assert report.archived == len(archived) and report.orders == 1
    start = old_delivery.accepted_at
    times = [(p.recorded_at - start).total_seconds() for p in archived]
    # Only inside the window (12:00-12:10), never the fixes before or after it.
    assert times[0] == 0 and times[-1] == 600  # the last fix at the door, at delivery
    assert all(0 <= t <= 600 for t in times)
    # 720 m riding, 4.5 m per fix: one point per 5 fixes (22.5 m); then the door, one per 30 s.
    assert len(archived) == 33 + 5
    riding = [p for p in archived if (p.recorded_at - start).total_seconds() <= 480]
    gaps = [
        haversine_m(a.point.x, a.point.y, b.point.x, b.point.y)
        for a, b in zip(riding, riding[1:], strict=False)
    ]
    assert max(gaps) == pytest.approx(22.5, abs=0.1)


def test_purge_is_idempotent_and_resumes(old_delivery):
    first = retention.tracks_purge()
    again = retention.tracks_purge()
    assert first.archived > 0 and (again.archived, again.raw_deleted) == (0, 0)


def test_the_retention_period_is_a_setting(old_delivery, settings):
    settings.TRACK_RETENTION_DAYS = 10
    assert retention.tracks_purge().raw_deleted == 0
    assert ArchivedTrackPoint.objects.count() == 0


def test_archived_tracks_and_chats_go_after_the_archive_period(old_delivery, student, settings):
    with clock(old_delivery.delivered_at + timedelta(minutes=5)):
        chat.chat_post(order=old_delivery, sender=student, quick="thanks")
    retention.tracks_purge()
    assert ArchivedTrackPoint.objects.exists() and ChatMessage.objects.exists()
    settings.TRACK_ARCHIVE_DAYS = 7
    report = retention.tracks_purge()
    assert report.archive_deleted > 0 and report.chat_deleted == 1
    assert not ArchivedTrackPoint.objects.exists() and not ChatMessage.objects.exists()


def test_the_replay_shows_the_archive_once_raw_fixes_are_gone(old_delivery):
    raw = order_track(old_delivery)
    assert raw and not any(p["archived"] for p in raw)
    retention.tracks_purge()
    kept = order_track(old_delivery)
    assert kept and all(p["archived"] for p in kept) and len(kept) < len(raw)
    assert [p["at"] for p in kept] == sorted(p["at"] for p in kept)


def test_the_command_reports_and_dry_run_changes_nothing(old_delivery):
    before = TrackPoint.objects.count()
    out = StringIO()
    call_command("purge_tracks", "--dry-run", stdout=out)
    assert "would delete" in out.getvalue()
    assert TrackPoint.objects.count() == before and not ArchivedTrackPoint.objects.exists()
    out = StringIO()
    call_command("purge_tracks", stdout=out)
    assert f"deleted {before}" in out.getvalue()
    assert TrackPoint.objects.count() == 0


def test_a_relay_order_keeps_each_riders_part(order, rider_male, campus, student):
    start = timezone.now().replace(microsecond=0) - timedelta(days=9)
    second = factories.make_rider(campus, gender="male")
    with clock(start):
        order = services.order_accept(order=order, rider=rider_male)
        order = services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    with clock(start + timedelta(minutes=3)):
        order = services.order_transition(order=order, to=Status.AT_STATION, actor=rider_male)
    fixes(rider_male, start, seconds=180)
    fixes(second, start + timedelta(minutes=3), seconds=180)  # not carrying it: not kept
    retention.tracks_purge()
    riders = set(ArchivedTrackPoint.objects.values_list("rider_id", flat=True))
    assert riders == {rider_male.pk}
