"""The merchant's live inbox socket: its own staff only; a paid order rings it at once, every
later change is pushed; another merchant's inbox hears nothing."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from campus_errand.asgi import application
from merchants import services
from merchants.models import MerchantStatus
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
FORBIDDEN = 4403


def session_headers(user) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def inbox(user, slug: str) -> WebsocketCommunicator:
    headers = await database_sync_to_async(session_headers)(user)
    return WebsocketCommunicator(application, f"/ws/merchant/{slug}/", headers=headers)


@pytest.mark.parametrize("who", ["anonymous", "student", "other_merchant"])
def test_only_the_merchants_staff_may_open_its_inbox(who, request, window, other_window):
    user = None if who == "anonymous" else request.getfixturevalue(who)

    async def scenario():
        ws = await inbox(user, window.slug)
        connected, code = await ws.connect()
        assert not connected and code == FORBIDDEN

    async_to_sync(scenario)()


def test_a_paid_order_rings_the_inbox_and_each_step_is_pushed(
    student, merchant, other_merchant, window, other_window, tea
):
    async def scenario():
        ws = await inbox(merchant, window.slug)
        assert (await ws.connect())[0]
        assert await ws.receive_json_from() == {"type": "hello"}
        other = await inbox(other_merchant, other_window.slug)
        assert (await other.connect())[0]
        await other.receive_json_from()

        order = await database_sync_to_async(factories.make_takeout)(
            customer=student, merchant=window, lines=[(tea, 1)]
        )
        pushed = await ws.receive_json_from(timeout=5)
        assert pushed["event"] == "new" and pushed["number"] == order.number
        assert pushed["ticket_no"] == 1 and pushed["merchant_status"] == "new"

        ticket = await database_sync_to_async(lambda: order.takeout)()
        await database_sync_to_async(services.ticket_advance)(
            ticket=ticket, to=MerchantStatus.ACCEPTED, actor=merchant
        )
        pushed = await ws.receive_json_from(timeout=5)
        assert (pushed["event"], pushed["merchant_status"]) == ("changed", "accepted")
        assert await other.receive_nothing(timeout=0.2)
        await ws.disconnect()
        await other.disconnect()

    async_to_sync(scenario)()


def test_an_operator_may_watch_any_inbox(operator, window):
    async def scenario():
        ws = await inbox(operator, window.slug)
        assert (await ws.connect())[0]
        await ws.disconnect()

    async_to_sync(scenario)()
