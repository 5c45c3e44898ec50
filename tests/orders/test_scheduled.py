"""Scheduled orders (预约): hidden from riders until their lead time, then opened; the promise."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from campus_errand.memo import forget_all
from orders import pricing, services
from orders.errors import NotAllowed
from orders.models import Order
from orders.status import Status
from tests import factories


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock at a weekday noon; clock(minutes=5) moves it on."""
    state = {"now": timezone.make_aware(dt.datetime(2026, 3, 10, 12, 0))}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])

    def move(**delta):
        state["now"] = state["now"] + dt.timedelta(**delta)
        return state["now"]

    move.now = lambda: state["now"]
    return move


def board(api, rider) -> list[str]:
    return [o["number"] for o in api(rider).get("/api/rider/board/").json()]


@pytest.fixture
def scheduled(student, campus, clock):
    deliver_by = clock.now() + dt.timedelta(hours=3)
    return factories.make_errand(customer=student, campus=campus, deliver_by=deliver_by)


def test_an_order_now_is_promised_for_now_plus_the_estimate(student, campus, clock):
    order = factories.make_errand(customer=student, campus=campus)
    rule = pricing.PricingRule()
    setting = pricing.kind_setting_for(campus, "parcel")
    minutes = pricing.estimated_minutes(rule, setting, order.distance_m, urgent=False)
    assert minutes == 10 + 5 + -(-order.distance_m // 75)
    assert order.promised_at == clock.now() + dt.timedelta(minutes=minutes)
    assert order.opens_at is None and order.status == Status.OPEN


def test_urgent_orders_are_promised_sooner(student, campus, clock):
    normal = factories.make_errand(customer=student, campus=campus)
    urgent = factories.make_errand(customer=student, campus=campus, urgent=True)
    assert urgent.promised_at == normal.promised_at - dt.timedelta(minutes=5)
    assert {line["code"] for line in urgent.price_lines} >= {"urgent"}


def test_a_scheduled_order_is_promised_for_its_time_and_opens_at_the_lead_time(scheduled, clock):
    minutes = scheduled.promised_at - scheduled.opens_at
    assert scheduled.promised_at == scheduled.deliver_by == clock.now() + dt.timedelta(hours=3)
    assert minutes == dt.timedelta(minutes=20 + (10 + 5 + -(-scheduled.distance_m // 75)))
    assert scheduled.status == Status.OPEN  # paid; held back from riders by its opening time


def test_a_scheduled_order_is_hidden_from_riders_until_it_opens(scheduled, rider_male, api, clock):
    assert scheduled.number not in board(api, rider_male)
    with pytest.raises(NotAllowed, match="opens to riders at"):
        services.order_accept(order=scheduled, rider=rider_male)
    clock(seconds=(scheduled.opens_at - clock.now()).total_seconds() + 1)
    assert scheduled.number in board(api, rider_male)  # visible even before the job runs
    services.order_accept(order=scheduled, rider=rider_male)


def test_the_job_opens_due_orders_once_and_tells_the_timeline(
    scheduled, student, campus, clock, django_capture_on_commit_callbacks
):
    assert services.order_open_due_scheduled() == 0
    clock(hours=3)
    with django_capture_on_commit_callbacks() as pushes:
        assert services.order_open_due_scheduled() == 1
    assert pushes  # pushed to the customer's page and the riders' boards
    order = Order.objects.get(pk=scheduled.pk)
    assert order.opens_at is None and order.status == Status.OPEN
    last = order.events.last()
    assert (last.old_status, last.new_status) == (Status.OPEN, Status.OPEN)
    assert "open to riders now" in last.note
    assert services.order_open_due_scheduled() == 0


def test_the_management_command_opens_due_orders(scheduled, clock):
    clock(hours=3)
    out = io.StringIO()
    call_command("open_scheduled_orders", stdout=out)
    assert "opened 1" in out.getvalue()
    assert Order.objects.get(pk=scheduled.pk).opens_at is None


def test_scheduled_orders_do_not_count_towards_the_busy_surcharge(scheduled, campus, clock):
    assert pricing.live_load(campus, clock.now()) == (0, 0)
    clock(hours=3)
    assert pricing.live_load(campus, clock.now()) == (1, 0)


def test_scheduled_quote_has_no_busy_surcharge_and_prices_the_delivery_time(student, campus, clock):
    for _ in range(3):
        factories.make_errand(customer=factories.make_user(), campus=campus)
    forget_all()  # the busy ratio is read at most every MEMO_SECONDS: as if a while ago
    p1, d3 = factories.building(campus, "P1"), factories.building(campus, "D3")
    now_quote = pricing.quote_make(
        request=pricing.QuoteRequest(campus=campus, kind="parcel", pickup=p1, dropoff=d3),
        customer=student,
    )
    late = timezone.make_aware(dt.datetime(2026, 3, 10, 23, 0))
    late_quote = pricing.quote_make(
        request=pricing.QuoteRequest(
            campus=campus, kind="parcel", pickup=p1, dropoff=d3, deliver_by=late
        ),
        customer=student,
    )
    assert "peak" in {line.code for line in now_quote.lines}
    codes = {line.code for line in late_quote.lines}
    assert "peak" not in codes and "night" in codes


@pytest.mark.parametrize(
    ("delta", "message"),
    [(dt.timedelta(minutes=10), "too soon"), (dt.timedelta(days=8), "at most 7 days")],
)
def test_deliver_by_too_soon_or_too_far_is_refused(delta, message, student, campus, api, clock):
    factories.fund_wallet(student, at_least=10_000)
    response = api(student).post(
        "/api/orders/quote/",
        {
            "kind": "document",
            "pickup_building": factories.building(campus, "C1").pk,
            "dropoff_building": factories.building(campus, "D3").pk,
            "deliver_by": (clock.now() + delta).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert message in response.json()["deliver_by"][0]


def test_a_queue_far_ahead_opens_before_its_start_and_one_soon_opens_now(student, campus, clock):
    start = clock.now() + dt.timedelta(hours=2)
    later = factories.make_errand(
        customer=student, campus=campus, kind="queue", pickup="C1", details={"start_at": start}
    )
    assert later.opens_at == start - dt.timedelta(minutes=10 + 20)
    soon = factories.make_errand(customer=student, campus=campus, kind="queue", pickup="C1")
    assert soon.opens_at is None


def test_queue_start_too_soon_for_a_rider_is_refused(student, campus, api, clock):
    response = api(student).post(
        "/api/orders/quote/",
        {
            "kind": "queue",
            "pickup_building": factories.building(campus, "C1").pk,
            "dropoff_building": factories.building(campus, "C1").pk,
            "details": {
                "start_at": (clock.now() + dt.timedelta(minutes=5)).isoformat(),
                "duration_minutes": 30,
            },
        },
        format="json",
    )
    assert response.status_code == 400
    assert "needs time to get there" in response.json()["details"]["start_at"][0]


def test_the_order_page_says_when_a_scheduled_order_opens(scheduled, student):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(student)
    html = client.get(f"/orders/{scheduled.number}/").content.decode()
    assert 'id="scheduled-note"' in html
    assert timezone.localtime(scheduled.opens_at).strftime("%H:%M") in html
