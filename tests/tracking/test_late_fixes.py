"""Late fixes: a phone's offline queue arrives after fresher fixes.

The server keeps them for the track, in recorded_at order, but never moves the live marker
back: each late fix is refused as a live position ("stale_location", HTTP 409) and pushed to
nobody.
"""

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from rest_framework.authtoken.models import Token

from campus_errand.asgi import application
from orders import services as order_services
from tests.factories import point_in
from tracking import live, services
from tracking.models import TrackPoint

ORIGIN = [(b"origin", b"http://testserver")]


# A minute ago, fixed for the whole module: fixes are "T0 + n seconds".
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fix(campus, seconds: float, dx: float = 0.0) -> dict:
    lat, lng = point_in(campus, dx=dx)
    return {"lat": lat, "lng": lng, "accuracy": 5.0, "recorded_at": at(seconds)}


def track(rider) -> list[datetime]:
    return list(
        TrackPoint.objects.filter(rider=rider)
        .order_by("recorded_at")
        .values_list("recorded_at", flat=True)
    )


@pytest.fixture
def carrying(order, rider_male):
    """The rider has accepted the student's order: the student may watch them."""
    return order_services.order_accept(order=order, rider=rider_male)


def test_late_fix_is_kept_in_the_track_but_not_made_live(campus, rider_male):
    services.location_record(rider=rider_male, **fix(campus, 10, dx=1))

    with pytest.raises(services.StaleLocation) as refused:
        services.location_record(rider=rider_male, **fix(campus, 5, dx=0.5))

    assert refused.value.code == "stale_location"
    assert refused.value.in_track is True
    assert track(rider_male) == [at(5), at(10)]
    assert live.position_get(rider_male.pk)["recorded_at"] == at(10).isoformat()


def test_resent_live_fix_is_neither_live_again_nor_a_second_track_point(campus, rider_male):
    services.location_record(rider=rider_male, **fix(campus, 10))

    with pytest.raises(services.StaleLocation) as refused:
        services.location_record(rider=rider_male, **fix(campus, 10))

    assert refused.value.in_track is False
    assert track(rider_male) == [at(10)]


def test_fix_taken_before_going_online_is_not_kept(campus, rider_male):
    from riders.models import RiderProfile

    RiderProfile.objects.filter(user=rider_male).update(online_since=at(60))
    live.position_clear(rider_male.pk)

    with pytest.raises(services.LocationRejected):
        services.location_record(rider=rider_male, **fix(campus, -120))

    assert track(rider_male) == []


def test_late_fix_over_http_answers_409_and_is_kept(api, campus, rider_male):
    client = api(rider_male)
    url = reverse("api:rider-location")
    lat, lng = point_in(campus)
    newest = client.post(
        url, {"lat": lat, "lng": lng, "recorded_at": at(10).isoformat()}, format="json"
    )
    late = client.post(
        url, {"lat": lat, "lng": lng, "recorded_at": at(3).isoformat()}, format="json"
    )

    assert newest.status_code == 200
    assert late.status_code == 409
    assert late.json()["code"] == "stale_location"
    assert "older than the last" in late.json()["detail"]
    assert track(rider_male) == [at(3), at(10)]


@pytest.mark.django_db(transaction=True)
def test_offline_queue_sent_late_arrives_in_order_and_never_moves_the_marker_back(
    campus, student, rider_male, carrying
):
    rider_token = Token.objects.create(user=rider_male).key
    student_token = Token.objects.create(user=student).key
    newest, queued = 100, [40, 55, 70, 85]  # the phone was offline from 40 s to 100 s

    async def scenario():
        watcher = WebsocketCommunicator(
            application, f"/ws/orders/{carrying.number}/?token={student_token}", ORIGIN
        )
        rider = WebsocketCommunicator(application, f"/ws/rider/?token={rider_token}", ORIGIN)
        assert (await watcher.connect())[0] and (await rider.connect())[0]
        assert (await watcher.receive_json_from())["type"] == "snapshot"

        # The fix taken when the network came back goes first, then the queue, oldest first.
        answers = []
        for seconds in [newest, *queued]:
            lat, lng = point_in(campus, dx=seconds / 100)
            await rider.send_json_to(
                {
                    "type": "location",
                    "lat": lat,
                    "lng": lng,
                    "recorded_at": at(seconds).isoformat().replace("+00:00", "Z"),
                    "seq": seconds,
                }
            )
            answers.append(await rider.receive_json_from())

        pushed = [await watcher.receive_json_from()]
        if not await watcher.receive_nothing(timeout=0.2):
            raise AssertionError(await watcher.receive_output())
        await watcher.disconnect()
        await rider.disconnect()
        return answers, pushed

    answers, pushed = async_to_sync(scenario)()

    assert answers[0] == {"type": "ack", "recorded_at": at(newest).isoformat(), "seq": newest}
    for answer, seconds in zip(answers[1:], queued, strict=True):
        assert answer["type"] == "error"
        assert answer["code"] == "stale_location"
        assert answer["in_track"] is True
        assert answer["seq"] == seconds
    assert [p["recorded_at"] for p in pushed] == [at(newest).isoformat()]
    assert track(rider_male) == [at(s) for s in sorted([newest, *queued])]
    assert live.position_get(rider_male.pk)["recorded_at"] == at(newest).isoformat()
