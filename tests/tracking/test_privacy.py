"""Location privacy, rule by rule: before the allowed window, during it, after delivery, a
stranger, an operator; riders never tracked offline; what the ETA pushes may carry; recorded
tracks only through the logged replay. (tracking/privacy.py and everything that applies it.)"""

import pytest
from django.test import Client
from django.utils import timezone

from campus.models import TrackingVisibleFrom
from orders import services
from orders.status import Status
from riders import services as rider_services
from tests import factories
from tests.factories import logged_in
from tracking import broadcast, eta, live
from tracking.models import TrackAccessLog, TrackPoint
from tracking.privacy import rider_visible_to

FROM_ACCEPTANCE, FROM_PICKUP = TrackingVisibleFrom.ACCEPTED, TrackingVisibleFrom.PICKED_UP
STEPS = [Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED]


def snapshot(user, order) -> dict | int:
    response = logged_in(user).get(f"/api/orders/{order.number}/snapshot/")
    return response.json() if response.status_code == 200 else response.status_code


def walk_to(order, rider, status):
    order = services.order_accept(order=order, rider=rider)
    for step in STEPS:
        if order.status == status:
            break
        order = services.order_transition(order=order, to=step, actor=rider)
    return order


@pytest.fixture
def setting(campus):
    def set_to(value):
        campus.tracking_visible_from = value
        campus.save(update_fields=["tracking_visible_from"])

    return set_to


# --- the customer: before, during, after --------------------------------------------------------


@pytest.mark.parametrize("visible_from", [FROM_ACCEPTANCE, FROM_PICKUP])
def test_customer_sees_no_rider_before_the_allowed_window(
    visible_from, setting, order, student, rider_male
):
    setting(visible_from)
    factories.set_position(rider_male, dx=-1)
    assert snapshot(student, order)["position"] is None  # open: no rider at all
    services.order_accept(order=order, rider=rider_male)
    shown = snapshot(student, order)["position"]
    if visible_from == FROM_PICKUP:
        assert shown is None
        # ... and the path drawn for the customer starts at the pickup, not at the rider.
        route = snapshot(student, order)["route"]
        assert route[0] == pytest.approx(
            [order.pickup_building.lat, order.pickup_building.lng], abs=1e-5
        )
    else:
        assert shown["rider"] == rider_male.pk


@pytest.mark.parametrize("visible_from", [FROM_ACCEPTANCE, FROM_PICKUP])
@pytest.mark.parametrize("status", [Status.PICKED_UP, Status.DELIVERING])
def test_customer_sees_the_rider_during_the_window(
    visible_from, status, setting, order, student, rider_male
):
    setting(visible_from)
    walk_to(order, rider_male, status)
    position = factories.set_position(rider_male, dx=1.5)
    shown = snapshot(student, order)["position"]
    assert shown["lat"] == position["lat"] and shown["lng"] == position["lng"]
    route = snapshot(student, order)["route"]
    assert route[0] == pytest.approx([position["lat"], position["lng"]], abs=1e-5)


@pytest.mark.parametrize("final", [Status.DELIVERED, Status.COMPLETED])
def test_customer_never_sees_the_rider_after_delivery(
    final, order, student, rider_male, api, monkeypatch, django_capture_on_commit_callbacks
):
    order = walk_to(order, rider_male, Status.DELIVERED)
    if final == Status.COMPLETED:
        services.order_transition(order=order, to=Status.COMPLETED, actor=student)
    factories.set_position(rider_male, dx=2)
    data = snapshot(student, order)
    assert data["position"] is None and data["route"] == [] and data["eta"] is None
    # ... and the rider's next fixes are no longer pushed to the order's watchers.
    groups: list[str] = []
    monkeypatch.setattr(broadcast, "send", lambda g, kind, payload: groups.extend(g))
    lat, lng = factories.point_in(order.campus, dx=2.2)
    fix = {"lat": lat, "lng": lng, "recorded_at": timezone.now().isoformat()}
    with django_capture_on_commit_callbacks(execute=True):
        assert api(rider_male).post("/api/rider/location/", fix, format="json").status_code == 200
    assert groups == [broadcast.OPS_GROUP]


def test_customer_of_another_order_of_the_same_rider_sees_only_their_own(
    order, student, other_student, campus, rider_male
):
    theirs = factories.make_order(customer=other_student, campus=campus)
    walk_to(order, rider_male, Status.DELIVERED)
    walk_to(theirs, rider_male, Status.DELIVERING)
    factories.set_position(rider_male, dx=1)
    assert snapshot(student, order)["position"] is None
    assert snapshot(other_student, theirs)["position"] is not None


# --- strangers and operators -------------------------------------------------------------------


def test_a_stranger_learns_nothing(order, rider_male, other_student):
    walk_to(order, rider_male, Status.DELIVERING)
    factories.set_position(rider_male)
    stranger = logged_in(other_student)
    assert stranger.get(f"/api/orders/{order.number}/snapshot/").status_code == 404
    assert stranger.get(f"/api/orders/{order.number}/chat/").status_code == 404
    assert stranger.get(f"/orders/{order.number}/").status_code == 404
    assert Client().get(f"/api/orders/{order.number}/snapshot/").status_code in (401, 403)
    assert not rider_visible_to(order, other_student)
    # Another rider is a stranger too.
    other_rider = factories.make_rider(order.campus, gender="male")
    assert logged_in(other_rider).get(f"/api/orders/{order.number}/snapshot/").status_code == 404


def test_an_operator_sees_the_rider_while_the_order_runs_and_not_after(
    order, rider_male, operator, student
):
    order = walk_to(order, rider_male, Status.DELIVERING)
    factories.set_position(rider_male)
    assert snapshot(operator, order)["position"] is not None
    services.order_transition(order=order, to=Status.DELIVERED, actor=rider_male)
    assert snapshot(operator, order)["position"] is None


def test_the_rider_sees_themself_only_on_their_active_order(order, rider_male):
    order = walk_to(order, rider_male, Status.DELIVERING)
    factories.set_position(rider_male)
    assert snapshot(rider_male, order)["position"] is not None
    services.order_transition(order=order, to=Status.DELIVERED, actor=rider_male)
    assert snapshot(rider_male, order)["position"] is None


# --- riders are never tracked offline ----------------------------------------------------------


def test_an_offline_rider_is_not_tracked(campus, student, api):
    rider = factories.make_rider(campus, gender="male", online=False)
    lat, lng = factories.point_in(campus)
    fix = {"lat": lat, "lng": lng, "recorded_at": timezone.now().isoformat()}
    assert api(rider).post("/api/rider/location/", fix, format="json").status_code == 403
    assert live.position_get(rider.pk) is None
    assert not TrackPoint.objects.filter(rider=rider).exists()


def test_going_offline_forgets_the_live_position_and_leaves_the_ops_map(
    campus, rider_male, operator, api, django_capture_on_commit_callbacks
):
    lat, lng = factories.point_in(campus)
    fix = {"lat": lat, "lng": lng, "recorded_at": timezone.now().isoformat()}
    assert api(rider_male).post("/api/rider/location/", fix, format="json").status_code == 200
    riders = logged_in(operator).get("/api/ops/map/").json()["riders"]
    assert [r["id"] for r in riders] == [rider_male.pk]
    with django_capture_on_commit_callbacks(execute=True):
        rider_services.rider_set_online(user=rider_male, online=False)
    assert live.position_get(rider_male.pk) is None
    assert logged_in(operator).get("/api/ops/map/").json()["riders"] == []
    again = {**fix, "recorded_at": timezone.now().isoformat()}
    assert api(rider_male).post("/api/rider/location/", again, format="json").status_code == 403


# --- what the ETA pushes carry -----------------------------------------------------------------


def test_eta_pushes_never_draw_the_path_from_a_rider_the_customer_may_not_see(
    setting, order, rider_male
):
    setting(FROM_PICKUP)
    services.order_accept(order=order, rider=rider_male)
    factories.set_position(rider_male, dx=-2, dy=0.2)
    pushed = eta.tick([order.number])
    assert len(pushed) == 1
    payload = pushed[0][1]["payload"]
    assert payload["eta"] is not None  # a time tells nobody where the rider is
    assert "route" not in payload  # ... a path starting at the rider would


# --- recorded tracks ---------------------------------------------------------------------------


def test_customers_and_riders_cannot_replay_a_track(order, student, rider_male):
    walk_to(order, rider_male, Status.DELIVERED)
    for user in (student, rider_male):
        page = logged_in(user).get(f"/ops/orders/{order.number}/replay/")
        assert page.status_code == 403
        posted = logged_in(user).post(
            f"/ops/orders/{order.number}/replay/", {"reason": "dispute", "note": "let me see"}
        )
        assert posted.status_code == 403
    assert not TrackAccessLog.objects.exists()


def test_an_operator_replays_only_with_a_reason_and_is_logged(order, rider_male, operator):
    walk_to(order, rider_male, Status.DELIVERED)
    client = logged_in(operator)
    form = client.get(f"/ops/orders/{order.number}/replay/")
    assert form.status_code == 200 and 'id="replay-form"' in form.content.decode()
    assert 'id="replay-data"' not in form.content.decode()
    no_reason = client.post(f"/ops/orders/{order.number}/replay/", {"reason": "dispute"})
    assert no_reason.status_code == 400 and 'id="replay-data"' not in no_reason.content.decode()
    assert not TrackAccessLog.objects.exists()
    shown = client.post(
        f"/ops/orders/{order.number}/replay/", {"reason": "dispute", "note": "ticket 4711"}
    )
    assert shown.status_code == 200 and 'id="access-logged"' in shown.content.decode()
    log = TrackAccessLog.objects.get()
    assert (log.user, log.order, log.reason, log.note) == (
        operator,
        order,
        "dispute",
        "ticket 4711",
    )


def test_the_privacy_notice_states_the_rules_and_the_periods_in_force(db, settings):
    settings.TRACK_RETENTION_DAYS = 5
    settings.TRACK_ARCHIVE_DAYS = 90
    settings.TRACKING_CHAT_CLOSE_HOURS = 3
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/privacy/").content.decode()
    assert "only while online" in page and "never after delivery" in page
    assert "deleted after 5 days" in page and "kept for 90 days" in page
    assert "closes 3 hours after delivery" in page and "every replay is logged" in page
