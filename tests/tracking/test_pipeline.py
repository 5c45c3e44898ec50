"""The live tracking pipeline: cache-only hot path, batched history, payloads serialised once,
coalescing for watchers that are behind, and loss that is counted, never silent."""

import logging
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.gis.geos import Point, Polygon
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from campus_errand.asgi import application
from orders import services as order_services
from orders.status import Status
from riders import services as rider_services
from tests import factories
from tests.factories import point_in
from tracking import broadcast, consumers, history, live, services, stats
from tracking.fanout import order_fanout
from tracking.models import TrackPoint

ORIGIN = [(b"origin", b"http://testserver")]


@pytest.fixture(autouse=True)
def _fresh_counters():
    stats.reset()
    history.discard_for_tests()
    yield
    history.discard_for_tests()


def fix(campus, seconds: float = 0.0, dx: float = 0.0) -> dict:
    lat, lng = point_in(campus, dx=dx)
    at = timezone.now() - timedelta(seconds=30) + timedelta(seconds=seconds)
    return {"lat": lat, "lng": lng, "accuracy": 5.0, "recorded_at": at}


@pytest.fixture
def carrying(order, rider_male):
    return order_services.order_accept(order=order, rider=rider_male)


def location_groups(campus, rider, seconds: float) -> list[str]:
    accepted = services.location_ingest(rider_id=rider.pk, **fix(campus, seconds))
    return accepted.groups


# --- the hot path reads no database ----------------------------------------------------------


def test_a_fix_is_validated_and_routed_from_the_cache_alone(campus, rider_male, carrying):
    services.location_ingest(rider_id=rider_male.pk, batch=True, **fix(campus, 1))  # warms it

    with CaptureQueriesContext(connection) as queries:
        accepted = services.location_ingest(
            rider_id=rider_male.pk, batch=True, **fix(campus, 2, dx=1)
        )

    assert queries.captured_queries == []
    assert accepted.groups == [broadcast.order_group(carrying.number), broadcast.OPS_GROUP]
    assert TrackPoint.objects.count() == 0  # batched: nothing written yet

    with CaptureQueriesContext(connection) as queries:
        assert history.flush() == 2
    inserts = [q for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    assert TrackPoint.objects.filter(rider=rider_male).count() == 2


def test_a_sockets_snapshot_reads_a_few_light_queries(campus, student, carrying, rider_male):
    # Every order socket opens with a snapshot, and a crowd reconnects at once after a deploy:
    # the order with its rider (and whether it has a chat), its events, the chat only if it has
    # one, and (unless an estimate was just told) the rider's orders; the buildings and the
    # campus come from the memo (campus_errand/memo.py), the customer is not read.
    from tracking import chat

    consumers._snapshot(student, carrying.number)  # fills the memo

    with CaptureQueriesContext(connection) as queries:
        snapshot = consumers._snapshot(student, carrying.number)

    sqls = [q["sql"] for q in queries.captured_queries]
    assert len(sqls) <= 3, sqls
    assert not any("campus_building" in sql or "campus_campus" in sql for sql in sqls)
    assert snapshot["dropoff"]["name"] == carrying.dropoff_building.display_name
    assert snapshot["viewer"] == "customer" and snapshot["rider"]["name"]
    assert snapshot["chat"]["messages"] == []
    assert consumers._snapshot(factories.make_user(), carrying.number) is None  # a stranger

    chat.chat_post(order=carrying, sender=rider_male, quick="downstairs")
    with CaptureQueriesContext(connection) as queries:
        snapshot = consumers._snapshot(student, carrying.number)
    assert len(queries.captured_queries) <= 4
    assert [m["role"] for m in snapshot["chat"]["messages"]] == ["rider"]


def test_track_tables_carry_no_spatial_index(db):
    # Tracks are read by rider, order and time; an R-tree / GiST updated for every fix was most
    # of the cost of writing the history (tracking/migrations/0003).
    with connection.cursor() as cursor:
        for table in ("tracking_trackpoint", "tracking_archivedtrackpoint"):
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT count(*) FROM pg_indexes WHERE tablename = %s"
                    " AND indexdef ILIKE '%%USING gist%%'",
                    [table],
                )
            else:
                cursor.execute(
                    "SELECT spatial_index_enabled FROM geometry_columns WHERE f_table_name = %s",
                    [table],
                )
            assert cursor.fetchone()[0] == 0, table


def test_routing_follows_transitions_of_a_cached_rider(
    campus, rider_male, carrying, django_capture_on_commit_callbacks
):
    group = broadcast.order_group(carrying.number)
    assert group in location_groups(campus, rider_male, 1)

    with django_capture_on_commit_callbacks(execute=True):
        for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
            order_services.order_transition(order=carrying, to=to, actor=rider_male)

    assert location_groups(campus, rider_male, 2) == [broadcast.OPS_GROUP]


def test_a_released_order_no_longer_gets_its_former_riders_fixes(
    campus, rider_male, carrying, django_capture_on_commit_callbacks
):
    assert broadcast.order_group(carrying.number) in location_groups(campus, rider_male, 1)

    with django_capture_on_commit_callbacks(execute=True):
        order_services.order_transition(order=carrying, to=Status.OPEN, actor=rider_male)

    assert location_groups(campus, rider_male, 2) == [broadcast.OPS_GROUP]


def test_going_offline_stops_tracking_and_going_online_resumes_it_at_once(
    campus, rider_male, django_capture_on_commit_callbacks
):
    location_groups(campus, rider_male, 1)

    with django_capture_on_commit_callbacks(execute=True):
        rider_services.rider_set_online(user=rider_male, online=False)
    with pytest.raises(services.NotAllowed):
        location_groups(campus, rider_male, 2)

    with django_capture_on_commit_callbacks(execute=True):
        rider_services.rider_set_online(user=rider_male, online=True)
    assert location_groups(campus, rider_male, 3) == [broadcast.OPS_GROUP]


def test_a_state_rebuilt_while_it_changed_is_not_trusted(campus, rider_male, carrying):
    # A rebuild that read the database before an invalidation is stored under the old
    # generation: the next read rebuilds again instead of trusting it.
    old_gen = live.shared_cache().get(live._gen_key(rider_male.pk))
    live.rider_state_invalidate(rider_male.pk)
    live._rebuild(rider_male.pk, old_gen)
    order_services.order_transition(order=carrying, to=Status.CANCELLED, actor=carrying.customer)

    assert location_groups(campus, rider_male, 1) == [broadcast.OPS_GROUP]


@pytest.mark.django_db
def test_the_cached_campus_bounds_agree_with_campus_contains(campus, rider_male):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    # An L-shaped campus with a lake in it: concave, and with a hole.
    (x0, y0, x1, y1) = campus.bounds.extent
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    lake = [
        (x0 + 0.1 * (x1 - x0), y0 + 0.1 * (y1 - y0)),
        (xm - 0.01 * (x1 - x0), y0 + 0.1 * (y1 - y0)),
    ]
    lake += [(xm - 0.01 * (x1 - x0), ym - 0.01 * (y1 - y0)), lake[0]]
    lake.insert(3, (x0 + 0.1 * (x1 - x0), ym - 0.01 * (y1 - y0)))
    campus.bounds = Polygon(
        [(x0, y0), (x1, y0), (x1, ym), (xm, ym), (xm, y1), (x0, y1), (x0, y0)], lake, srid=4326
    )
    campus.save()
    live.rider_state_invalidate(rider_male.pk)
    state = live.rider_read(rider_male.pk).state
    margin = 0.2 * (x1 - x0)

    @settings(max_examples=300, deadline=None)
    @given(
        st.floats(x0 - margin, x1 + margin, allow_nan=False),
        st.floats(y0 - margin, y1 + margin, allow_nan=False),
    )
    def agree(lng, lat):
        if campus.bounds.boundary.distance(Point(lng, lat)) < 1e-9:
            return  # on the boundary either answer will do
        assert live.inside_bounds(state, lng, lat) == campus.contains(lng, lat)

    agree()


def _socket_fix(campus, seconds: float, dx: float = 0.0) -> dict:
    return {**fix(campus, seconds, dx), "seq": None}


@pytest.mark.django_db(transaction=True)
def test_a_sockets_copy_of_the_routing_follows_an_order_change(campus, rider_male, carrying):
    from channels.db import database_sync_to_async

    @database_sync_to_async
    def deliver():  # each transition commits: its on_commit hooks run
        for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
            order_services.order_transition(order=carrying, to=to, actor=rider_male)

    async def scenario():
        layer = get_channel_layer()
        first = await consumers._ingest(layer, rider_male.pk, _socket_fix(campus, 1))
        await deliver()  # the socket's process remembers the routing from the first fix
        second = await consumers._ingest(layer, rider_male.pk, _socket_fix(campus, 2))
        return first.groups, second.groups

    first, second = async_to_sync(scenario)()

    assert broadcast.order_group(carrying.number) in first
    assert second == [broadcast.OPS_GROUP]


@pytest.mark.django_db(transaction=True)
def test_a_fresher_fix_through_http_makes_an_older_socket_fix_late(campus, rider_male):
    from channels.db import database_sync_to_async

    record = database_sync_to_async(services.location_record)
    fresher = fix(campus, 20)

    async def scenario():
        layer = get_channel_layer()
        await consumers._ingest(layer, rider_male.pk, _socket_fix(campus, 10))
        await record(rider=rider_male, **fresher)  # another door, another process
        with pytest.raises(services.StaleLocation) as late:
            await consumers._ingest(layer, rider_male.pk, _socket_fix(campus, 15))
        return late.value

    late = async_to_sync(scenario)()

    assert late.in_track
    assert live.position_get(rider_male.pk)["recorded_at"] == fresher["recorded_at"].isoformat()


# --- history in batches ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_flusher_writes_a_full_batch_without_waiting(campus, rider_male, monkeypatch):
    monkeypatch.setattr(history, "BATCH_SIZE", 3)
    monkeypatch.setattr(history, "BATCH_SECONDS", 60.0)

    async def scenario():
        import asyncio

        history.start()
        for i in range(3):
            await services.alocation_ingest(rider_id=rider_male.pk, **fix(campus, i))
        for _ in range(200):
            if await count() >= 3:  # another process's flusher may write part of it first
                break
            await asyncio.sleep(0.01)
        written = await count()
        await history.stop()
        return written

    from channels.db import database_sync_to_async

    count = database_sync_to_async(lambda: TrackPoint.objects.count())
    live.rider_read(rider_male.pk)  # the async path reads no database: warm the state
    assert async_to_sync(scenario)() == 3


def test_flush_track_writes_what_is_buffered(campus, rider_male):
    for i in range(4):
        services.location_ingest(rider_id=rider_male.pk, batch=True, **fix(campus, i))

    from io import StringIO

    out = StringIO()
    call_command("flush_track", wait=0.2, stdout=out)

    assert TrackPoint.objects.count() == 4
    assert "4 track point(s) written" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_socket_servers_flush_when_asked_over_the_channel_layer(campus, rider_male):
    from tracking.management.commands.flush_track import _ask_servers

    async def scenario():
        import asyncio

        history.start()
        await asyncio.sleep(0.05)  # the listener joins its group
        await services.alocation_ingest(rider_id=rider_male.pk, **fix(campus, 1))
        replies = await _ask_servers(get_channel_layer(), 2.0)
        await history.stop()
        return replies

    live.rider_read(rider_male.pk)
    replies = async_to_sync(scenario)()

    # Every socket server in this process answers (a browser test's server may still be up): the
    # one that held the fix wrote it, the others had nothing.
    assert sorted(r["written"] for r in replies)[-1:] == [1]
    assert sum(r["written"] for r in replies) == 1
    assert TrackPoint.objects.count() == 1


# --- over the sockets --------------------------------------------------------------------------


def watcher_socket(number: str, token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/orders/{number}/?token={token}", ORIGIN)


@pytest.mark.django_db(transaction=True)
def test_a_fix_is_serialised_once_for_all_its_watchers(
    campus, student, operator, rider_male, carrying, monkeypatch
):
    dumped = []
    real = broadcast._dumps
    monkeypatch.setattr(broadcast, "_dumps", lambda obj: dumped.append(obj) or real(obj))
    tokens = [Token.objects.create(user=u).key for u in (student, operator, rider_male)]

    async def scenario():
        watchers = [watcher_socket(carrying.number, t) for t in tokens[:2]]
        rider = WebsocketCommunicator(application, f"/ws/rider/?token={tokens[2]}", ORIGIN)
        for ws in (*watchers, rider):
            assert (await ws.connect())[0]
        for ws in watchers:
            await ws.receive_from()  # the snapshot
        lat, lng = point_in(campus)
        await rider.send_json_to(
            {"type": "location", "lat": lat, "lng": lng, "recorded_at": timezone.now().isoformat()}
        )
        ack = await rider.receive_json_from()
        texts = [await ws.receive_from() for ws in watchers]
        for ws in (*watchers, rider):
            await ws.disconnect()
        return ack, texts

    ack, texts = async_to_sync(scenario)()

    assert ack["type"] == "ack"
    assert [d["type"] for d in dumped] == ["location"]
    assert texts[0] == texts[1] == real(dumped[0])


@pytest.mark.django_db(transaction=True)
def test_watchers_of_one_order_share_one_subscription(student, operator, carrying):
    tokens = [Token.objects.create(user=u).key for u in (student, operator)]
    group = broadcast.order_group(carrying.number)

    async def scenario():
        watchers = [watcher_socket(carrying.number, t) for t in tokens]
        for ws in watchers:
            assert (await ws.connect())[0]
        joined = order_fanout().groups[group]
        seen = (len(joined.members), bool(joined.channel))
        for ws in watchers:
            await ws.disconnect()
        return seen, group in order_fanout().groups

    seen, still_there = async_to_sync(scenario)()

    assert seen == (2, True)
    assert not still_there


def location_message(rider_id: int, n: int, lng: float) -> dict:
    payload = broadcast.location_payload(
        {"rider": rider_id, "lat": 30.3, "lng": lng, "accuracy": 5.0, "recorded_at": "x"}
    )
    return broadcast.location_message(rider_id=rider_id, n=n, payload=payload)


@pytest.mark.django_db(transaction=True)
def test_a_watcher_that_is_behind_gets_the_newest_location_and_every_status(
    student, rider_male, carrying, monkeypatch
):
    monkeypatch.setattr(consumers, "MIN_LOCATION_INTERVAL", 0.5)
    token = Token.objects.create(user=student).key
    group = broadcast.order_group(carrying.number)
    status = {"type": "status", "number": carrying.number, "status": Status.PICKED_UP}

    async def scenario():
        ws = watcher_socket(carrying.number, token)
        assert (await ws.connect())[0]
        await ws.receive_json_from()
        layer = get_channel_layer()
        for n in range(1, 6):  # a burst: the watcher is behind
            await layer.group_send(group, location_message(rider_male.pk, n, 120 + n))
        await broadcast.push(
            layer, [group], {"type": "order.status", "text": broadcast._dumps(status)}
        )
        for n in range(6, 11):
            await layer.group_send(group, location_message(rider_male.pk, n, 120 + n))
        frames = [await ws.receive_json_from(timeout=3) for _ in range(4)]
        quiet = await ws.receive_nothing(timeout=0.7)
        await ws.disconnect()
        return frames, quiet

    frames, quiet = async_to_sync(scenario)()

    assert [(f["type"], f.get("lng")) for f in frames] == [
        ("location", 121),
        ("location", 125),
        ("status", None),
        ("location", 130),
    ]
    assert quiet
    assert stats.counters["coalesced"] == 7
    assert stats.counters["lost.sequence_gap"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_gap_in_a_riders_fixes_is_counted_and_logged_as_loss(
    student, rider_male, carrying, caplog
):
    token = Token.objects.create(user=student).key
    group = broadcast.order_group(carrying.number)

    async def scenario():
        ws = watcher_socket(carrying.number, token)
        assert (await ws.connect())[0]
        await ws.receive_json_from()
        layer = get_channel_layer()
        for n in (1, 4):  # 2 and 3 never arrived
            await layer.group_send(group, location_message(rider_male.pk, n, 120))
            await ws.receive_json_from()
        await ws.disconnect()

    with caplog.at_level(logging.WARNING, logger="tracking.pipeline"):
        async_to_sync(scenario)()

    assert stats.counters["lost.sequence_gap"] == 2
    assert "lost (sequence_gap)" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_no_location_reaches_a_watcher_after_the_final_status(student, rider_male, carrying):
    token = Token.objects.create(user=student).key
    group = broadcast.order_group(carrying.number)
    delivered = {"type": "status", "number": carrying.number, "status": Status.DELIVERED}

    async def scenario():
        ws = watcher_socket(carrying.number, token)
        assert (await ws.connect())[0]
        await ws.receive_json_from()
        layer = get_channel_layer()
        await broadcast.push(
            layer, [group], {"type": "order.status", "text": broadcast._dumps(delivered)}
        )
        await layer.group_send(group, location_message(rider_male.pk, 1, 120))
        frames = [await ws.receive_json_from()]
        quiet = await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return frames, quiet

    frames, quiet = async_to_sync(scenario)()

    assert [f["status"] for f in frames] == ["delivered"] and quiet
    assert stats.counters["withheld"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_rider_socket_closes_unanswered_when_redis_is_away(rider_male, campus, monkeypatch):
    async def redis_away(**kwargs):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(services, "alocation_ingest", redis_away)
    token = Token.objects.create(user=rider_male).key

    async def scenario():
        ws = WebsocketCommunicator(application, f"/ws/rider/?token={token}", ORIGIN)
        assert (await ws.connect())[0]
        lat, lng = point_in(campus)
        await ws.send_json_to(
            {"type": "location", "lat": lat, "lng": lng, "recorded_at": timezone.now().isoformat()}
        )
        closed = await ws.receive_output(timeout=2)
        await ws.wait()
        return closed

    closed = async_to_sync(scenario)()

    # No ack and no error frame: the phone keeps the fix and sends it again after reconnecting.
    assert closed == {"type": "websocket.close", "code": consumers.SERVER_ERROR}
    assert stats.counters["lost.push_failed"] == 1


def test_a_push_that_fails_is_counted_as_loss(caplog):
    class BrokenLayer:
        async def group_send(self, group, message):
            raise ConnectionError("redis went away")

    with caplog.at_level(logging.WARNING, logger="tracking.pipeline"):
        async_to_sync(broadcast.push)(BrokenLayer(), ["order.1", "ops"], {"type": "x"})

    assert stats.counters["lost.push_failed"] == 2
    assert "redis went away" in caplog.text


# --- the operators' view of it -----------------------------------------------------------------


def test_tracking_stats_are_for_operators_only(api, student, operator):
    url = reverse("api:tracking-stats")
    stats.incr("fixes.live", 3)
    stats.loss("sequence_gap", 2)

    assert api().get(url).status_code == 401
    assert api(student).get(url).status_code == 403
    response = api(operator).get(url)
    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["fixes.live"] == 3
    assert body["lost"] == 2 and body["lost_by_kind"] == {"sequence_gap": 2}
