"""The production channel layer: an idle watcher must still hear the next push.

redis-py 8 gives every connection a 5 s socket_timeout, which silently kills the pub/sub layer's
idle subscriber (channels_redis issue 422): a customer watching a quiet order would never hear
"delivered". Settings pass socket_timeout None and requirements pin redis<8; this test holds a
socket idle past 10 s and then pushes.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from campus_errand.asgi import application
from orders import services

IDLE_SECONDS = 11

pytestmark = [
    pytest.mark.skipif(
        not settings.REDIS_URL, reason="needs Redis: set REDIS_URL to run the channel layer test"
    ),
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_channel_layer_is_the_redis_pubsub_layer():
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = get_channel_layer()
    assert isinstance(layer, RedisPubSubChannelLayer)
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert all(host.get("socket_timeout", "unset") is None for host in hosts)


def test_idle_watcher_still_receives_the_next_push(order, student, rider_male):
    client = Client()
    client.force_login(student)
    headers = [
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]

    async def scenario():
        ws = WebsocketCommunicator(application, f"/ws/orders/{order.number}/", headers=headers)
        connected, _ = await ws.connect()
        assert connected
        snapshot = await ws.receive_json_from()
        await asyncio.sleep(IDLE_SECONDS)
        await database_sync_to_async(services.order_accept)(order=order, rider=rider_male)
        pushed = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return snapshot, pushed

    snapshot, pushed = async_to_sync(scenario)()
    assert snapshot["status"] == "open"
    assert (pushed["type"], pushed["status"]) == ("status", "accepted")


def test_the_hot_path_commits_by_digest_and_reloads_a_flushed_script(campus, order, rider_male):
    # A fix is stored and published by the script's SHA1 (EVALSHA); a Redis that lost its
    # scripts (restart, SCRIPT FLUSH) is given the text once, and the fix is not lost.
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import point_in
    from tracking import live
    from tracking import services as tracking

    services.order_accept(order=order, rider=rider_male)
    live.rider_read(rider_male.pk)

    def fix(seconds: float) -> dict:
        lat, lng = point_in(campus)
        at = timezone.now() - timedelta(seconds=30 - seconds)
        return {"lat": lat, "lng": lng, "accuracy": 5.0, "recorded_at": at}

    async def scenario():
        hot = live.redis_hot_path()
        await hot.client.script_flush()
        layer = get_channel_layer()
        first = await tracking.alocation_ingest(rider_id=rider_male.pk, layer=layer, **fix(1))
        known = await hot.client.script_exists(live._COMMIT_SHA)
        second = await tracking.alocation_ingest(rider_id=rider_male.pk, layer=layer, **fix(2))
        return first, known, second

    first, known, second = async_to_sync(scenario)()
    assert known == [True]
    assert first.position["recorded_at"] < second.position["recorded_at"]
    assert live.position_get(rider_male.pk) == second.position


def test_the_hot_paths_commands_of_one_loop_turn_go_out_in_one_write():
    """The fixes a server reads in one turn of its loop reach Redis in one write, and every
    reply still finds its command."""
    from tracking import live

    class Counting:
        def __init__(self, transport):
            self.transport, self.writes = transport, 0

        def write(self, data):
            self.writes += 1
            self.transport.write(data)

        def __getattr__(self, name):
            return getattr(self.transport, name)

    async def scenario():
        pipe = live.redis_hot_path()._pipe
        assert await pipe.call("PING") == "PONG"
        counting = pipe.transport = Counting(pipe.transport)
        replies = await asyncio.gather(*(pipe.call("ECHO", f"fix {i}") for i in range(50)))
        return replies, counting.writes

    replies, writes = async_to_sync(scenario)()
    assert replies == [f"fix {i}".encode() for i in range(50)]
    assert writes == 1
