"""Rider locations through the HTTP fallback, and who sees them (snapshots and pushes)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from campus.models import TrackingVisibleFrom
from orders import services
from orders.status import Status
from riders import services as rider_services
from tests import factories
from tracking import broadcast, live
from tracking.models import TrackPoint
from tracking.snapshot import order_snapshot

URL = "/api/rider/location/"


def fix(dx: float = 0.0, dy: float = 0.0, *, at=None, **extra) -> dict:
    lat, lng = factories.point_in(None, dx=dx, dy=dy)
    data = {"lat": lat, "lng": lng, "accuracy": 6.5, "recorded_at": (at or timezone.now())}
    data["recorded_at"] = data["recorded_at"].isoformat()
    data.update(extra)
    return data


@pytest.fixture
def pushes(monkeypatch):
    """Every group message the broadcaster sends, as (group, type, payload)."""
    sent: list[tuple[str, str, dict]] = []

    def record(groups, event_type, payload):
        sent.extend((g, event_type, payload) for g in groups)

    monkeypatch.setattr(broadcast, "send", record)
    return sent


# --- the HTTP fallback -------------------------------------------------------------------------


def test_rider_posts_a_fix_and_it_becomes_live(rider_male, api):
    response = api(rider_male).post(URL, fix(dx=1), format="json")

    assert response.status_code == 200, response.content
    lat, lng = factories.point_in(None, dx=1)
    assert response.json()["lat"] == pytest.approx(lat)
    assert live.position_get(rider_male.pk)["lng"] == pytest.approx(lng)
    point = TrackPoint.objects.get(rider=rider_male)
    assert (point.point.x, point.point.y) == (pytest.approx(lng), pytest.approx(lat))
    assert point.accuracy_m == 6.5


def test_fix_outside_the_campus_is_400_with_a_message(rider_male, api):
    response = api(rider_male).post(URL, fix(dx=40), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "This position is outside the campus.",
        "code": "bad_location",
    }
    assert live.position_get(rider_male.pk) is None
    assert not TrackPoint.objects.exists()


def test_older_fix_is_409_and_does_not_move_the_rider_back(rider_male, api):
    client = api(rider_male)
    now = timezone.now()
    assert client.post(URL, fix(dx=2, at=now), format="json").status_code == 200

    older = client.post(URL, fix(dx=1, at=now - timedelta(seconds=5)), format="json")
    same = client.post(URL, fix(dx=1, at=now), format="json")

    assert older.status_code == 409 and same.status_code == 409
    assert older.json()["code"] == "stale_location"
    assert "older" in older.json()["detail"] or "already" in older.json()["detail"]
    assert live.position_get(rider_male.pk)["lng"] == pytest.approx(
        factories.point_in(None, dx=2)[1]
    )


def test_fix_from_the_future_is_refused(rider_male, api):
    response = api(rider_male).post(URL, fix(at=timezone.now() + timedelta(hours=1)), format="json")
    assert response.status_code == 400
    assert "future" in response.json()["detail"]


MALFORMED_FIXES = [
    ({"lng": 120.08, "recorded_at": "2026-01-01T08:00:00Z"}, "lat"),
    ({"lat": 30.3, "recorded_at": "2026-01-01T08:00:00Z"}, "lng"),
    ({"lat": 30.3, "lng": 120.08}, "recorded_at"),
    ({"lat": "north", "lng": 120.08, "recorded_at": "2026-01-01T08:00:00Z"}, "lat"),
    ({"lat": 91, "lng": 120.08, "recorded_at": "2026-01-01T08:00:00Z"}, "lat"),
    ({"lat": 30.3, "lng": -181, "recorded_at": "2026-01-01T08:00:00Z"}, "lng"),
    ({"lat": 30.3, "lng": 120.08, "recorded_at": "yesterday"}, "recorded_at"),
    ({"lat": 30.3, "lng": 120.08, "recorded_at": 1767225600}, "recorded_at"),
    (
        {"lat": 30.3, "lng": 120.08, "accuracy": -1, "recorded_at": "2026-01-01T08:00:00Z"},
        "accuracy",
    ),
    ({"lat": "NaN", "lng": 120.08, "recorded_at": "2026-01-01T08:00:00Z"}, "lat"),
    ({"lat": [30.3], "lng": 120.08, "recorded_at": "2026-01-01T08:00:00Z"}, "lat"),
]


def test_malformed_fix_is_400_with_a_field_message(rider_male, api):
    client = api(rider_male)
    for data, field in MALFORMED_FIXES:
        response = client.post(URL, data, format="json")
        assert response.status_code == 400, (data, response.content)
        assert response.json()[field], data
    assert live.position_get(rider_male.pk) is None
    assert not TrackPoint.objects.exists()


@pytest.fixture
def rider_just_online(campus):
    """A rider who went online through the service (so the server knows since when)."""
    rider = factories.make_rider(campus, gender="male", online=False)
    rider_services.rider_set_online(user=rider, online=True)
    return rider


@pytest.mark.parametrize(
    "recorded_at",
    ["0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"],
)
def test_absurd_timestamps_are_400_not_500(recorded_at, rider_just_online, api):
    response = api(rider_just_online).post(URL, fix(recorded_at=recorded_at), format="json")
    assert response.status_code == 400, response.content
    assert not TrackPoint.objects.exists()


def test_fix_taken_before_going_online_is_refused(rider_just_online, api):
    response = api(rider_just_online).post(
        URL, fix(at=timezone.now() - timedelta(hours=1)), format="json"
    )
    assert response.status_code == 400
    assert "offline" in response.json()["detail"]
    assert not TrackPoint.objects.exists()


def test_non_json_body_is_400(rider_male, api):
    response = api(rider_male).post(URL, data="{lat:", content_type="application/json")
    assert response.status_code == 400


def test_naive_timestamp_is_read_in_campus_time(rider_male, api):
    local = timezone.localtime() - timedelta(seconds=5)
    response = api(rider_male).post(
        URL, fix(recorded_at=local.replace(tzinfo=None).isoformat()), format="json"
    )
    assert response.status_code == 200
    assert TrackPoint.objects.get().recorded_at == local.replace(microsecond=local.microsecond)


def test_offline_unapproved_and_non_riders_cannot_share_a_location(campus, student, api):
    offline = factories.make_rider(campus, gender="male", online=False)
    unapproved = factories.make_rider(campus, gender="male", verified=False)
    for user in (offline, unapproved, student):
        response = api(user).post(URL, fix(), format="json")
        assert response.status_code == 403, user
    assert not TrackPoint.objects.exists()


# --- who gets the pushes -----------------------------------------------------------------------


def test_fix_is_pushed_after_commit_to_the_visible_orders_and_ops(
    rider_male, student, campus, pushes, django_capture_on_commit_callbacks, api
):
    carried = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=carried, rider=rider_male)
    factories.make_order(customer=student, campus=campus)  # open: not the rider's
    pushes.clear()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        api(rider_male).post(URL, fix(dx=1), format="json")

    assert len(callbacks) == 1
    groups = {group for group, kind, _ in pushes if kind == "order.location"}
    assert groups == {broadcast.order_group(carried.number), broadcast.OPS_GROUP}
    payload = pushes[0][2]
    assert payload["type"] == "location" and payload["rider"] == rider_male.pk


def test_fix_before_pickup_is_not_pushed_to_the_order_when_the_campus_says_pickup(
    rider_male, order, campus, pushes, django_capture_on_commit_callbacks, api
):
    campus.tracking_visible_from = TrackingVisibleFrom.PICKED_UP
    campus.save()
    services.order_accept(order=order, rider=rider_male)
    pushes.clear()

    with django_capture_on_commit_callbacks(execute=True):
        api(rider_male).post(URL, fix(), format="json")

    assert {g for g, _, _ in pushes} == {broadcast.OPS_GROUP}


def test_fix_after_delivery_is_not_pushed_to_the_order(
    rider_male, order, pushes, django_capture_on_commit_callbacks, api
):
    services.order_accept(order=order, rider=rider_male)
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        services.order_transition(order=order, to=to, actor=rider_male)
    pushes.clear()

    with django_capture_on_commit_callbacks(execute=True):
        api(rider_male).post(URL, fix(), format="json")

    assert broadcast.order_group(order.number) not in {g for g, _, _ in pushes}


def test_nothing_is_pushed_when_the_transaction_rolls_back(
    rider_male, order, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.order_accept(order=order, rider=rider_male)
            raise RuntimeError("payment failed")
    assert callbacks == [] and pushes == []


# --- who sees the rider in the snapshot --------------------------------------------------------

AFTER_ACCEPT = [
    Status.ACCEPTED,
    Status.PICKED_UP,
    Status.AT_STATION,
    Status.DELIVERING,
    Status.DELIVERED,
    Status.COMPLETED,
]


def advance(order, rider, customer, until: str):
    steps = {
        Status.ACCEPTED: [],
        Status.PICKED_UP: [Status.PICKED_UP],
        Status.AT_STATION: [Status.PICKED_UP, Status.AT_STATION],
        Status.DELIVERING: [Status.PICKED_UP, Status.DELIVERING],
        Status.DELIVERED: [Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED],
        Status.COMPLETED: [Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED],
    }[until]
    order = services.order_accept(order=order, rider=rider)
    for to in steps:
        order = services.order_transition(order=order, to=to, actor=rider)
    if until == Status.COMPLETED:
        order = services.order_transition(order=order, to=Status.COMPLETED, actor=customer)
    return order


@pytest.mark.parametrize("status", AFTER_ACCEPT, ids=str)
def test_customer_sees_the_rider_only_while_on_the_way(
    status, order, student, rider_male, operator, other_student, campus
):
    from orders.selectors import order_detail_qs

    advance(order, rider_male, student, status)
    live.position_set(
        rider_male.pk,
        {"rider": rider_male.pk, "lat": 30.3, "lng": 120.08, "recorded_at": "2026-01-01T00:00Z"},
    )
    rider_working = status not in (Status.DELIVERED, Status.COMPLETED)
    for setting in TrackingVisibleFrom:
        campus.tracking_visible_from = setting
        campus.save()
        order = order_detail_qs().get(pk=order.pk)

        on_the_way = status in {Status.PICKED_UP, Status.AT_STATION, Status.DELIVERING} or (
            status == Status.ACCEPTED and setting == TrackingVisibleFrom.ACCEPTED
        )
        assert (order_snapshot(order, student)["position"] is not None) == on_the_way, setting
        assert (order_snapshot(order, operator)["position"] is not None) == rider_working
        assert (order_snapshot(order, rider_male)["position"] is not None) == rider_working
        assert order_snapshot(order, other_student)["position"] is None


def test_open_order_snapshot_shows_no_rider(order, student):
    snapshot = order_snapshot(order, student)
    assert snapshot["rider"] is None and snapshot["position"] is None
    assert snapshot["route"][0] == pytest.approx(
        [order.pickup_building.lat, order.pickup_building.lng], abs=1e-3
    )
