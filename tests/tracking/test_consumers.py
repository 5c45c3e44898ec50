"""The order and rider sockets, through the real ASGI application with a session cookie."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from campus.models import TrackingVisibleFrom
from campus_errand.asgi import application
from orders import services
from orders.errors import InvalidTransition
from orders.status import Status
from riders import services as rider_services
from tests import factories
from tracking import live
from tracking import services as tracking_services

pytestmark = pytest.mark.django_db(transaction=True)


FORBIDDEN = 4403


def session_headers(user, origin: bytes = b"http://testserver") -> list[tuple[bytes, bytes]]:
    """The headers a logged-in browser sends when it opens a socket on this site."""
    headers = [(b"host", b"testserver"), (b"origin", origin)]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def socket(path: str, user, **kw) -> WebsocketCommunicator:
    headers = await database_sync_to_async(session_headers)(user, **kw)
    return WebsocketCommunicator(application, path, headers=headers)


def run(scenario):
    """Run an async scenario from a sync test (thread-sensitive DB calls stay on this thread)."""
    return async_to_sync(scenario)()


transition = database_sync_to_async(services.order_transition)
accept = database_sync_to_async(services.order_accept)


@database_sync_to_async
def record_fix(rider, *, dx: float = 0.0, at=None) -> dict:
    lat, lng = factories.point_in(None, dx=dx)
    return tracking_services.location_record(
        rider=rider, lat=lat, lng=lng, recorded_at=at or timezone.now(), accuracy=5.0
    )


def fix_frame(dx: float = 0.0, *, at=None, **extra) -> dict:
    lat, lng = factories.point_in(None, dx=dx)
    frame = {
        "type": "location",
        "lat": lat,
        "lng": lng,
        "accuracy": 8,
        "recorded_at": (at or timezone.now()).isoformat(),
    }
    frame.update(extra)
    return frame


async def open_order_socket(user, number: str) -> tuple[WebsocketCommunicator, dict]:
    ws = await socket(f"/ws/orders/{number}/", user)
    connected, _ = await ws.connect()
    assert connected
    snapshot = await ws.receive_json_from()
    return ws, snapshot


async def refusal_code(ws: WebsocketCommunicator):
    connected, code = await ws.connect()
    return None if connected else code


# --- the order socket --------------------------------------------------------------------------


def test_watcher_gets_the_snapshot_then_status_and_location_pushes(order, student, rider_male):
    async def scenario():
        ws, snapshot = await open_order_socket(student, order.number)
        # A refused move pushes nothing: the next message must be the accept.
        with pytest.raises(InvalidTransition):
            await transition(order=order, to=Status.DELIVERED, actor=rider_male)
        await accept(order=order, rider=rider_male)
        status = await ws.receive_json_from()
        await record_fix(rider_male, dx=1)
        location = await ws.receive_json_from()
        await ws.disconnect()
        return snapshot, status, location

    snapshot, status, location = run(scenario)
    assert snapshot["type"] == "snapshot"
    assert snapshot["number"] == order.number
    assert snapshot["status"] == "open"
    assert snapshot["icon"] and snapshot["color"].startswith("#") and snapshot["label"]
    assert [e["status"] for e in snapshot["timeline"]] == ["pending", "open"]
    assert snapshot["pickup"]["lat"] and snapshot["dropoff"]["lng"]
    assert snapshot["rider"] is None and snapshot["position"] is None
    assert len(snapshot["route"]) >= 2

    assert status["type"] == "status"
    assert (status["number"], status["status"]) == (order.number, "accepted")
    assert status["event"]["status"] == "accepted"
    assert status["rider"]["name"].endswith("**")

    lat, lng = factories.point_in(None, dx=1)
    assert location["type"] == "location"
    assert (location["lat"], location["lng"]) == (pytest.approx(lat), pytest.approx(lng))
    assert location["recorded_at"]


def test_location_from_the_rider_socket_reaches_the_customer(order, student, rider_male):
    services.order_accept(order=order, rider=rider_male)

    async def scenario():
        watcher, _ = await open_order_socket(student, order.number)
        rider = await socket("/ws/rider/", rider_male)
        assert (await rider.connect())[0]
        await rider.send_json_to(fix_frame(dx=2))
        ack = await rider.receive_json_from()
        pushed = await watcher.receive_json_from()
        await rider.disconnect()
        await watcher.disconnect()
        return ack, pushed

    ack, pushed = run(scenario)
    assert ack["type"] == "ack"
    assert pushed["type"] == "location"
    assert pushed["lng"] == pytest.approx(factories.point_in(None, dx=2)[1])


def test_customer_sees_the_rider_only_from_pickup_when_the_campus_says_so(
    order, student, rider_male, campus
):
    campus.tracking_visible_from = TrackingVisibleFrom.PICKED_UP
    campus.save()
    services.order_accept(order=order, rider=rider_male)

    async def scenario():
        ws, snapshot = await open_order_socket(student, order.number)
        await record_fix(rider_male, dx=1)  # accepted: not shown to the customer
        await transition(order=order, to=Status.PICKED_UP, actor=rider_male)
        first = await ws.receive_json_from()
        await record_fix(rider_male, dx=2)  # picked up: shown
        second = await ws.receive_json_from()
        await ws.disconnect()
        again, later = await open_order_socket(student, order.number)
        await again.disconnect()
        return snapshot, first, second, later

    snapshot, first, second, later = run(scenario)
    assert snapshot["position"] is None
    assert (first["type"], first["status"]) == ("status", "picked_up")
    assert second["type"] == "location"
    assert later["position"]["lng"] == pytest.approx(factories.point_in(None, dx=2)[1])


def test_customer_never_sees_the_rider_before_acceptance_or_after_delivery(
    order, student, rider_male, other_student, campus
):
    # The rider works on another order first: the customer must not see them while waiting.
    other = factories.make_order(customer=other_student, campus=campus)
    services.order_accept(order=other, rider=rider_male)
    tracking_services.location_record(
        rider=rider_male, lat=factories.LAT0, lng=factories.LNG0, recorded_at=timezone.now()
    )

    async def scenario():
        ws, before = await open_order_socket(student, order.number)
        await record_fix(rider_male, dx=1)
        await accept(order=order, rider=rider_male)
        accepted = await ws.receive_json_from()  # the status, not the earlier location
        for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
            await transition(order=order, to=to, actor=rider_male)
        pushed = [await ws.receive_json_from() for _ in range(3)]
        await record_fix(rider_male, dx=2)  # delivered: must not reach the customer
        await transition(order=order, to=Status.COMPLETED, actor=student)
        completed = await ws.receive_json_from()
        await ws.disconnect()
        again, after = await open_order_socket(student, order.number)
        await again.disconnect()
        return before, accepted, pushed, completed, after

    before, accepted, pushed, completed, after = run(scenario)
    assert before["position"] is None
    assert (accepted["type"], accepted["status"]) == ("status", "accepted")
    assert [m["status"] for m in pushed] == ["picked_up", "delivering", "delivered"]
    assert (completed["type"], completed["status"]) == ("status", "completed")
    assert after["position"] is None
    assert live.position_get(rider_male.pk) is not None  # the rider is still live elsewhere


def test_strangers_are_refused_on_the_order_socket(order, student, other_student, rider_female):
    async def scenario():
        path = f"/ws/orders/{order.number}/"
        return {
            "stranger": await refusal_code(await socket(path, other_student)),
            "unassigned_rider": await refusal_code(await socket(path, rider_female)),
            "anonymous": await refusal_code(await socket(path, None)),
            "unknown_order": await refusal_code(await socket("/ws/orders/260101000/", student)),
        }

    assert run(scenario) == {
        "stranger": FORBIDDEN,
        "unassigned_rider": FORBIDDEN,
        "anonymous": FORBIDDEN,
        "unknown_order": FORBIDDEN,
    }


def test_socket_from_a_foreign_origin_is_refused(order, student):
    async def scenario():
        ws = await socket(f"/ws/orders/{order.number}/", student, origin=b"http://evil.example")
        return await refusal_code(ws)

    assert run(scenario) is not None


def test_operator_and_assigned_rider_may_watch(order, operator, rider_male):
    services.order_accept(order=order, rider=rider_male)

    async def scenario():
        statuses = []
        for user in (operator, rider_male):
            ws, snapshot = await open_order_socket(user, order.number)
            statuses.append(snapshot["status"])
            await ws.disconnect()
        return statuses

    assert run(scenario) == ["accepted", "accepted"]


def test_order_socket_survives_bad_frames_and_resyncs(order, student):
    async def scenario():
        ws, _ = await open_order_socket(student, order.number)
        await ws.send_to(text_data="not json")
        await ws.send_to(text_data="[1, 2]")
        await ws.send_to(bytes_data=b"\x00")
        await ws.send_to(text_data='{"type": "dance"}')
        await ws.send_json_to({"type": "resync"})
        snapshot = await ws.receive_json_from()
        await ws.disconnect()
        return snapshot

    snapshot = run(scenario)
    assert snapshot["type"] == "snapshot" and snapshot["number"] == order.number


# --- the rider socket --------------------------------------------------------------------------

BAD_FRAMES = {
    "not_json": {"text_data": "lat=30.3"},
    "binary": {"bytes_data": b"\x00\x01"},
    "not_an_object": {"text_data": "[30.3, 120.08]"},
    "unknown_type": {"text_data": '{"type": "hello"}'},
    "missing_fields": {"text_data": '{"type": "location", "lat": 30.3}'},
    "wrong_types": {
        "text_data": '{"type": "location", "lat": "north", "lng": 1, "recorded_at": 5}'
    },
    "bad_time": {
        "text_data": '{"type": "location", "lat": 30.3, "lng": 120.08, "recorded_at": "soon"}'
    },
    "not_a_number": {
        "text_data": '{"type": "location", "lat": NaN, "lng": 120.08, '
        '"recorded_at": "2026-01-01T00:00:00Z"}'
    },
}


def test_rider_socket_answers_bad_frames_with_errors_and_stays_open(rider_male):
    start = timezone.now() - timedelta(seconds=30)

    async def scenario():
        ws = await socket("/ws/rider/", rider_male)
        assert (await ws.connect())[0]
        replies = {}
        for name, frame in BAD_FRAMES.items():
            await ws.send_to(**frame)
            replies[name] = await ws.receive_json_from()
        ancient = fix_frame(recorded_at="0001-01-01T00:00:00+14:00")
        for name, frame in [
            ("outside_campus", fix_frame(dx=40, at=start)),
            ("future", fix_frame(at=start + timedelta(hours=1))),
            ("ancient", ancient),
            ("first_good", fix_frame(dx=0, at=start + timedelta(seconds=10))),
            ("older", fix_frame(dx=1, at=start)),
            ("good_after", fix_frame(dx=1, at=start + timedelta(seconds=20))),
        ]:
            await ws.send_json_to(frame)
            replies[name] = await ws.receive_json_from()
        await ws.disconnect()
        return replies

    replies = run(scenario)
    for name in [*BAD_FRAMES, "outside_campus", "future", "ancient", "older"]:
        assert replies[name]["type"] == "error", name
        assert replies[name]["message"], name
    assert replies["outside_campus"]["code"] == "bad_location"
    assert "outside the campus" in replies["outside_campus"]["message"]
    assert replies["older"]["code"] == "stale_location"
    assert replies["first_good"]["type"] == "ack"
    assert replies["good_after"]["type"] == "ack"
    assert live.position_get(rider_male.pk)["lng"] == pytest.approx(
        factories.point_in(None, dx=1)[1]
    )


def test_rider_socket_is_for_approved_riders(student, campus):
    unapproved = factories.make_rider(campus, gender="male", verified=False)

    async def scenario():
        codes = [
            await refusal_code(await socket("/ws/rider/", student)),
            await refusal_code(await socket("/ws/rider/", None)),
        ]
        ws = await socket("/ws/rider/", unapproved)
        assert (await ws.connect())[0]
        await ws.send_json_to(fix_frame())
        reply = await ws.receive_json_from()
        await ws.disconnect()
        return codes, reply

    codes, reply = run(scenario)
    assert codes == [FORBIDDEN, FORBIDDEN]
    assert reply["type"] == "error" and reply["code"] == "forbidden"


def test_rider_who_went_offline_is_no_longer_tracked_on_an_open_socket(rider_male):
    async def scenario():
        ws = await socket("/ws/rider/", rider_male)
        assert (await ws.connect())[0]
        await ws.send_json_to(fix_frame(at=timezone.now() - timedelta(seconds=5)))
        before = await ws.receive_json_from()
        await database_sync_to_async(rider_services.rider_set_online)(user=rider_male, online=False)
        await ws.send_json_to(fix_frame(dx=1))
        after = await ws.receive_json_from()
        await ws.disconnect()
        return before, after

    before, after = run(scenario)
    assert before["type"] == "ack"
    assert after["type"] == "error" and "offline" in after["message"]


def test_rider_socket_hears_status_changes_of_their_orders(order, student, rider_male):
    services.order_accept(order=order, rider=rider_male)

    async def scenario():
        ws = await socket("/ws/rider/", rider_male)
        assert (await ws.connect())[0]
        await transition(order=order, to=Status.CANCELLED, actor=student)
        message = await ws.receive_json_from()
        await ws.disconnect()
        return message

    message = run(scenario)
    assert (message["type"], message["status"]) == ("status", "cancelled")


def token_socket(path: str, key: str) -> WebsocketCommunicator:
    """A socket opened by an API client: a token, no session cookie."""
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    return WebsocketCommunicator(application, f"{path}?token={key}", headers=headers)


def test_api_clients_authenticate_sockets_with_a_token(order, rider_male):
    from rest_framework.authtoken.models import Token

    services.order_accept(order=order, rider=rider_male)
    key = Token.objects.create(user=rider_male).key

    async def scenario():
        ws = token_socket(f"/ws/orders/{order.number}/", key)
        connected, _ = await ws.connect()
        snapshot = await ws.receive_json_from()
        await ws.disconnect()
        bad = token_socket(f"/ws/orders/{order.number}/", "nope")
        return connected, snapshot, await refusal_code(bad)

    connected, snapshot, refused = run(scenario)
    assert connected and snapshot["status"] == "accepted"
    assert refused == FORBIDDEN


def test_a_tokens_user_is_read_once_in_the_trip_the_socket_makes_anyway(
    order, student, operator, monkeypatch
):
    """An order socket reads its token's user with the snapshot (one trip to a thread, not
    two); sockets that need the user on the loop (the ops map) read it first."""
    from rest_framework.authtoken.models import Token

    from tracking import auth

    reads = []
    real = auth._token_user
    monkeypatch.setattr(auth, "_token_user", lambda key: reads.append(key) or real(key))
    own = Token.objects.create(user=student).key
    staff = Token.objects.create(user=operator).key

    async def scenario():
        ws = token_socket(f"/ws/orders/{order.number}/", own)
        connected, _ = await ws.connect()
        snapshot = await ws.receive_json_from()
        await ws.disconnect()
        ops = token_socket("/ws/ops/", staff)
        ops_connected, _ = await ops.connect()
        await ops.disconnect()
        customer_at_ops = token_socket("/ws/ops/", own)
        return connected, snapshot, ops_connected, await refusal_code(customer_at_ops)

    connected, snapshot, ops_connected, refused = run(scenario)
    assert connected and snapshot["viewer"] == "customer"
    assert ops_connected and refused == FORBIDDEN
    assert reads == [own, staff, own]  # once per socket


def test_a_token_decides_who_a_socket_is_even_beside_a_session_cookie(order, student):
    # The customer's browser session, but a stranger's token: the token decides, and the
    # stranger may not watch the order. A token socket's scope carries no session.
    from rest_framework.authtoken.models import Token

    from tracking.auth import TokenAuthMiddleware

    somebody = factories.make_user()
    stranger = Token.objects.create(user=somebody).key
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    async def scenario():
        ws = await socket(f"/ws/orders/{order.number}/?token={stranger}", student)
        refused = await refusal_code(ws)
        own = await socket(f"/ws/orders/{order.number}/", student)
        connected, _ = await own.connect()
        await own.disconnect()
        probe = TokenAuthMiddleware(app)
        await probe({"type": "websocket", "query_string": f"token={stranger}".encode()}, None, None)
        return refused, connected

    refused, connected = run(scenario)
    assert refused == FORBIDDEN and connected
    assert "session" not in seen and seen["user"] == somebody
