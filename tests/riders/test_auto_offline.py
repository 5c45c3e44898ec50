"""Idle riders go offline by themselves: `manage.py riders_auto_offline` switches off online
riders with no position for a while, unless they carry an order."""

import io
import logging
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders import services as order_services
from riders import services
from riders.models import RiderProfile, Shift, ShiftEnd
from tests import factories
from tracking import live
from tracking.models import TrackPoint

pytestmark = pytest.mark.django_db


def online_since(rider, minutes: int):
    """The rider went online through their switch `minutes` ago (a shift is open)."""
    services.rider_set_online(user=rider, online=True)
    at = timezone.now() - timedelta(minutes=minutes)
    RiderProfile.objects.filter(user=rider).update(online_since=at)
    Shift.objects.filter(rider=rider, ended_at__isnull=True).update(started_at=at)
    return rider


@pytest.fixture
def rider(campus):
    return factories.make_rider(campus, gender="male", online=False, username="idle_rider")


def sweep(**kw) -> str:
    out = io.StringIO()
    call_command("riders_auto_offline", stdout=out, **kw)
    return out.getvalue()


def is_online(rider) -> bool:
    return RiderProfile.objects.get(user=rider).online


def test_idle_rider_is_switched_offline_and_the_shift_says_why(
    rider, django_capture_on_commit_callbacks
):
    online_since(rider, 40)
    factories.set_position(rider, at=timezone.now() - timedelta(minutes=20))

    with django_capture_on_commit_callbacks(execute=True):
        out = sweep()

    assert "1 idle riders switched offline (idle_rider)" in out
    profile = RiderProfile.objects.get(user=rider)
    assert not profile.online and profile.online_since is None
    shift = Shift.objects.get(rider=rider)
    assert shift.ended_at is not None and shift.end_reason == ShiftEnd.IDLE
    assert live.position_get(rider.pk) is None  # never tracked offline


def test_rider_online_without_any_position_goes_offline_after_the_limit(rider):
    online_since(rider, 16)
    sweep()
    assert not is_online(rider)


def test_rider_with_a_fresh_fix_stays_online(rider):
    online_since(rider, 120)
    factories.set_position(rider, at=timezone.now() - timedelta(minutes=2))

    assert "0 idle riders switched offline" in sweep()
    assert is_online(rider)
    assert Shift.objects.get(rider=rider).ended_at is None


def test_a_fresh_track_point_counts_when_the_live_position_is_not_shared(rider, campus):
    """Without Redis the cron process does not see the server's live positions: the track does."""
    online_since(rider, 120)
    lat, lng = factories.point_in(campus)
    TrackPoint.objects.create(
        rider=rider, point=Point(lng, lat), recorded_at=timezone.now() - timedelta(minutes=1)
    )
    sweep()
    assert is_online(rider)


def test_an_old_track_point_does_not(rider, campus):
    online_since(rider, 120)
    lat, lng = factories.point_in(campus)
    old = timezone.now() - timedelta(minutes=30)
    point = TrackPoint.objects.create(rider=rider, point=Point(lng, lat), recorded_at=old)
    TrackPoint.objects.filter(pk=point.pk).update(received_at=old)
    sweep()
    assert not is_online(rider)


def test_rider_who_just_went_online_stays_online(rider):
    online_since(rider, 3)
    sweep()
    assert is_online(rider)


def test_rider_carrying_an_order_stays_online_and_is_logged(rider, student, campus, caplog):
    online_since(rider, 60)
    factories.set_position(rider, at=timezone.now() - timedelta(minutes=30))
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=type(rider).objects.get(pk=rider.pk))

    with caplog.at_level(logging.WARNING, logger="riders"):
        out = sweep()

    assert is_online(rider)
    assert "idle_rider: idle but carrying orders, left online" in out
    assert "0 idle riders switched offline, 1 idle with orders left online." in out
    assert any(
        "idle_rider" in r.getMessage() and "carrying 1" in r.getMessage() for r in caplog.records
    )


def test_the_limit_can_be_changed(rider):
    online_since(rider, 40)
    factories.set_position(rider, at=timezone.now() - timedelta(minutes=20))
    sweep(minutes=30)
    assert is_online(rider)
    sweep(minutes=10)
    assert not is_online(rider)


def test_dry_run_lists_and_changes_nothing(rider):
    online_since(rider, 40)
    assert "idle_rider: would go offline" in sweep(dry_run=True)
    assert is_online(rider)


def test_limit_below_a_minute_is_refused():
    with pytest.raises(CommandError):
        sweep(minutes=0)


def test_a_fix_arriving_after_the_sweep_read_keeps_the_rider_online(rider):
    """The sweep checks again once it holds the rider's row."""
    online_since(rider, 40)
    cutoff = timezone.now() - timedelta(minutes=15)
    factories.set_position(rider)

    assert services.rider_idle_offline(user=rider, cutoff=cutoff) is False
    assert is_online(rider)


def test_offline_riders_and_other_shift_ends_keep_their_reasons(rider, operator):
    online_since(rider, 5)
    services.rider_set_online(user=rider, online=False)
    assert Shift.objects.get(rider=rider).end_reason == ShiftEnd.RIDER

    services.rider_set_online(user=rider, online=True)
    services.rider_suspend(profile=rider.rider_profile, operator=operator, reason="Test")
    assert Shift.objects.filter(rider=rider).first().end_reason == ShiftEnd.OPERATOR
    assert sweep().startswith("0 idle riders")  # suspended riders are offline already


def test_earnings_api_tells_the_rider_why_a_shift_ended(rider, api):
    online_since(rider, 40)
    sweep()
    shifts = api(rider).get("/api/rider/earnings/").json()["shifts"]
    assert shifts[0]["end_reason"] == "idle"
