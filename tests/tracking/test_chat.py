"""Order chat: who may read and write, when it is open, what the other side sees, live pushes."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from campus_errand.asgi import application
from orders import services
from orders.models import Order
from orders.status import Status
from tests import factories
from tests.factories import logged_in
from tracking import broadcast, chat
from tracking.models import ChatMessage


def url(order) -> str:
    return f"/api/orders/{order.number}/chat/"


@pytest.fixture
def accepted(order, rider_male):
    return services.order_accept(order=order, rider=rider_male)


@pytest.fixture
def pushes(monkeypatch):
    sent: list[tuple[str, str, dict]] = []
    monkeypatch.setattr(
        broadcast,
        "send",
        lambda groups, kind, payload: sent.extend((g, kind, payload) for g in groups),
    )
    return sent


def deliver(order, rider):
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = services.order_transition(order=order, to=to, actor=rider)
    return order


# --- who -------------------------------------------------------------------------------------


def test_customer_and_rider_talk_with_masked_names(accepted, student, rider_male, api):
    sent = api(student).post(url(accepted), {"body": "住3楼, 302"}, format="json")
    assert sent.status_code == 201
    assert sent.json()["name"] == "s**" and sent.json()["role"] == "customer"
    reply = api(rider_male).post(url(accepted), {"quick": "downstairs"}, format="json")
    assert reply.status_code == 201 and reply.json()["text"] == "I'm downstairs"
    log = api(rider_male).get(url(accepted)).json()
    assert [(m["role"], m["name"]) for m in log["messages"]] == [
        ("customer", "s**"),
        ("rider", "r**"),
    ]
    assert "student" not in str(log) and "rider_male" not in str(log)


def test_strangers_and_other_riders_are_refused(accepted, other_student, campus, api):
    other_rider = factories.make_rider(campus, gender="male")
    for user in (other_student, other_rider):
        assert api(user).get(url(accepted)).status_code == 404
        assert api(user).post(url(accepted), {"body": "hi"}, format="json").status_code == 404
        page = logged_in(user).post(f"/orders/{accepted.number}/chat/", {"body": "hi"})
        assert page.status_code == 404
    assert api().get(url(accepted)).status_code == 401
    assert not ChatMessage.objects.exists()


def test_operators_read_but_do_not_write(accepted, student, operator, api):
    api(student).post(url(accepted), {"body": "hello"}, format="json")
    state = api(operator).get(url(accepted)).json()
    assert state["open"] is False and state["role"] is None
    assert [m["text"] for m in state["messages"]] == ["hello"]
    refused = api(operator).post(url(accepted), {"body": "hi"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_a_released_rider_leaves_the_chat(accepted, student, rider_male, api):
    api(rider_male).post(url(accepted), {"quick": "wait"}, format="json")
    services.order_transition(order=accepted, to=Status.OPEN, actor=rider_male)
    assert api(rider_male).get(url(accepted)).status_code == 404
    state = api(student).get(url(accepted)).json()
    assert state["open"] is False and len(state["messages"]) == 1  # kept for the customer


# --- when ------------------------------------------------------------------------------------


def test_chat_opens_when_a_rider_accepts(order, student, rider_male, api):
    closed = api(student).post(url(order), {"body": "anyone?"}, format="json")
    assert closed.status_code == 409 and closed.json()["code"] == "chat_closed"
    services.order_accept(order=order, rider=rider_male)
    assert api(student).post(url(order), {"body": "anyone?"}, format="json").status_code == 201


def test_chat_closes_two_hours_after_delivery(accepted, student, rider_male, api):
    deliver(accepted, rider_male)
    state = api(student).get(url(accepted)).json()
    assert state["open"] is True and state["closes_at"]
    assert api(student).post(url(accepted), {"quick": "thanks"}, format="json").status_code == 201
    Order.objects.filter(pk=accepted.pk).update(
        delivered_at=timezone.now() - timedelta(hours=2, seconds=1)
    )
    late = api(rider_male).post(url(accepted), {"body": "still there?"}, format="json")
    assert late.status_code == 409 and "2 hours" in late.json()["detail"]
    assert api(student).get(url(accepted)).json()["open"] is False


def test_the_closing_delay_is_a_setting(accepted, student, rider_male, settings, api):
    settings.TRACKING_CHAT_CLOSE_HOURS = 0.5
    deliver(accepted, rider_male)
    Order.objects.filter(pk=accepted.pk).update(delivered_at=timezone.now() - timedelta(minutes=31))
    assert api(student).post(url(accepted), {"body": "x"}, format="json").status_code == 409


def test_a_cancelled_order_has_a_closed_chat(accepted, student, api):
    services.order_transition(order=accepted, to=Status.CANCELLED, actor=student)
    assert api(student).post(url(accepted), {"body": "x"}, format="json").status_code == 409


# --- what ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["call me 13800138000", "电话138 0013 8000", "tel: 138-0013-8000 thanks"]
)
def test_phone_numbers_never_reach_the_other_side(typed, accepted, rider_male, api):
    api(rider_male).post(url(accepted), {"body": typed}, format="json")
    stored = ChatMessage.objects.get().body
    assert "138****8000" in stored
    assert "0013" not in stored and "13800138000" not in stored


def test_bad_messages_are_refused_with_a_reason(accepted, student, api):
    for data, status in [
        ({}, 400),
        ({"body": "   "}, 400),
        ({"body": "x" * 501}, 400),
        ({"quick": "downstairs"}, 400),  # a rider's quick reply, not the customer's
        ({"quick": "nonsense"}, 400),
    ]:
        response = api(student).post(url(accepted), data, format="json")
        assert response.status_code == status, data
        assert response.json()["detail"], data
    assert not ChatMessage.objects.exists()


def test_sending_too_fast_is_refused(accepted, student, api):
    for _ in range(chat.PER_MINUTE):
        assert api(student).post(url(accepted), {"quick": "wait"}, format="json").status_code == 201
    assert api(student).post(url(accepted), {"quick": "wait"}, format="json").status_code == 429


def test_the_chat_limit_is_a_sliding_minute(accepted, student, api, monkeypatch):
    # Half the limit just before a minute's turn, half just after: the next one is still refused.
    start = timezone.now().replace(second=59, microsecond=0)
    for i in range(chat.PER_MINUTE):
        at = start + timedelta(seconds=2 * (i >= chat.PER_MINUTE // 2))
        monkeypatch.setattr(timezone, "now", lambda at=at: at)
        assert api(student).post(url(accepted), {"quick": "wait"}, format="json").status_code == 201
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=30))
    assert api(student).post(url(accepted), {"quick": "wait"}, format="json").status_code == 429
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=61))
    assert api(student).post(url(accepted), {"quick": "wait"}, format="json").status_code == 201


def test_quick_replies_are_shown_in_the_readers_language(accepted, rider_male, student):
    logged_in(rider_male).post(url(accepted), {"quick": "at_door"}, HTTP_ACCEPT_LANGUAGE="en")
    stored = ChatMessage.objects.get()
    assert (stored.quick, stored.body) == ("at_door", "")
    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    page.force_login(student)
    assert "I&#x27;m at the door" in page.get(f"/orders/{accepted.number}/").content.decode()


def test_messages_are_pushed_to_the_order_and_the_rider_on_commit(
    accepted, student, rider_male, pushes, django_capture_on_commit_callbacks, api
):
    pushes.clear()
    with django_capture_on_commit_callbacks(execute=True):
        api(student).post(url(accepted), {"body": "hi"}, format="json")
    chat_pushes = [(g, p) for g, kind, p in pushes if kind == broadcast.CHAT_EVENT]
    assert {g for g, _ in chat_pushes} == {
        broadcast.order_group(accepted.number),
        broadcast.rider_group(rider_male.pk),
    }
    assert chat_pushes[0][1]["message"]["text"] == "hi"


def test_the_order_page_chat_works_without_script(accepted, student, rider_male):
    client = logged_in(student)
    page = client.get(f"/orders/{accepted.number}/").content.decode()
    assert 'id="chat-form"' in page and 'value="coming_down"' in page
    response = client.post(f"/orders/{accepted.number}/chat/", {"quick": "coming_down"})
    assert response.status_code == 302 and response["Location"].endswith("#chat")
    rider_page = logged_in(rider_male).get(f"/orders/{accepted.number}/").content.decode()
    assert "Coming down now" in rider_page and 'value="downstairs"' in rider_page
    assert "13800001234" not in rider_page  # the student's phone


# --- live, over the socket -------------------------------------------------------------------


def _headers(user):
    client = Client()
    client.force_login(user)
    return [
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_message_reaches_the_other_side_over_the_order_socket(campus, student, rider_male):
    order = factories.make_order(customer=student, campus=campus)
    order = services.order_accept(order=order, rider=rider_male)
    post = database_sync_to_async(chat.chat_post)

    async def scenario():
        headers = await database_sync_to_async(_headers)(student)
        customer = WebsocketCommunicator(
            application, f"/ws/orders/{order.number}/", headers=headers
        )
        rider_headers = await database_sync_to_async(_headers)(rider_male)
        rider_app = WebsocketCommunicator(application, "/ws/rider/", headers=rider_headers)
        assert (await customer.connect())[0] and (await rider_app.connect())[0]
        first = await customer.receive_json_from(timeout=5)
        assert first["type"] == "snapshot" and first["chat"]["open"] is True
        await post(order=order, sender=rider_male, quick="almost")
        pushed = await customer.receive_json_from(timeout=5)
        assert pushed["type"] == "chat" and pushed["message"]["quick"] == "almost"
        assert pushed["message"]["name"] == "r**"
        # The rider app hears it too (skipping anything else a shared Redis brings to rider.<id>).
        to_rider = {}
        while to_rider.get("type") != "chat":
            to_rider = await rider_app.receive_json_from(timeout=5)
        assert to_rider["message"]["quick"] == "almost"
        await customer.disconnect()
        await rider_app.disconnect()

    async_to_sync(scenario)()
