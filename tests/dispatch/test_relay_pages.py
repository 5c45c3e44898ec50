"""The riders' hand-over screen at a transfer station (dispatch/views.py, templates/dispatch/
relay.html): the leg on the board's cards, "arrived at the station", each rider's code as QR and
text, the other's code typed in, the order moving on to leg 2's rider; and every refusal, which
answers 4xx in the rider's language and changes nothing."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from dispatch import relay
from dispatch.models import RelayLeg
from orders import services as order_services
from orders.models import Order
from orders.status import Status
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def picked_up(to_women, man):
    """The relay planned, leg 1's rider on the way to the station with the item."""
    relay.relay_plan(order=to_women)
    order_services.order_accept(order=to_women, rider=man)
    return order_services.order_transition(order=to_women, to=Status.PICKED_UP, actor=man)


@pytest.fixture
def at_station(picked_up, man, woman):
    """Leg 1 at the station, leg 2 given to her (as the dispatcher does)."""
    order = relay.relay_arrive(order=picked_up, rider=man)
    relay.relay_leg2_assign(order=order, rider=woman)
    return Order.objects.get(pk=order.pk)


def client_for(user, lang: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    if user is not None:
        client.force_login(user)
    return client


def page_url(order) -> str:
    return reverse("dispatch:relay", args=[order.number])


def arrive_url(order) -> str:
    return reverse("dispatch:relay_arrive", args=[order.number])


def handoff_url(order) -> str:
    return reverse("dispatch:relay_handoff", args=[order.number])


def shown_code(html: str) -> str:
    match = re.search(r'id="relay-code"[^>]*>(\d{6})<', html)
    assert match, "the page shows the rider's code"
    return match.group(1)


def wrong_code(order) -> str:
    """A six-digit code that is neither leg's."""
    taken = {leg.handoff_code for leg in relay.relay_legs(order)}
    return next(c for c in ("000000", "111111", "222222") if c not in taken)


def snapshot(order) -> tuple:
    """Everything a refusal must leave as it was."""
    legs = tuple(
        RelayLeg.objects.filter(order=order)
        .order_by("number")
        .values_list("rider_id", "arrived_at", "code_confirmed_at", "window_start")
    )
    fresh = Order.objects.get(pk=order.pk)
    return fresh.status, fresh.rider_id, fresh.events.count(), legs


# --- the happy path ------------------------------------------------------------------------------


def test_two_riders_hand_over_at_the_station_by_each_others_code(picked_up, man, woman, student):
    order = picked_up
    his = client_for(man)

    # His board: the card says leg 1 and where to, with "arrived" instead of "on the way".
    board = his.get("/rider/").content.decode()
    assert 'data-relay-leg="1"' in board and "Relay, leg 1: carry it to 中转站" in board
    assert arrive_url(order) in board
    assert "Mark: On the way" not in board

    page = his.get(page_url(order))
    assert page.status_code == 200
    assert 'id="relay-arrive"' in page.content.decode()
    assert 'id="relay-code"' not in page.content.decode()  # no code before the station

    response = his.post(arrive_url(order))
    assert response.status_code == 302 and response["Location"] == page_url(order)
    assert Order.objects.get(pk=order.pk).status == Status.AT_STATION
    page = his.get(page_url(order)).content.decode()
    his_code = shown_code(page)
    assert his_code == relay.handoff_code_for(order, man)
    assert "<svg" in page  # the same code as a QR
    assert "No second rider yet" in page and 'id="relay-form"' not in page

    # The dispatcher gives leg 2 to her: it shows on her board before it is hers to carry.
    relay.relay_leg2_assign(order=order, rider=woman)
    hers = client_for(woman)
    board = hers.get("/rider/").content.decode()
    assert 'data-relay-leg="2"' in board and "Relay, leg 2: take it over at 中转站" in board
    assert page_url(order) in board
    page = hers.get(page_url(order)).content.decode()
    her_code = shown_code(page)
    assert her_code != his_code and 'id="relay-form"' in page

    # She enters his code: one half done, nothing moves yet.
    response = hers.post(handoff_url(order), {"code": his_code})
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == Status.AT_STATION
    assert "The other rider has entered your code." in his.get(page_url(order)).content.decode()
    state = his.get(reverse("dispatch:relay_state", args=[order.number])).json()
    assert state == {"state": "at_station:1:0:1", "handed_over": False}

    # He enters hers (as read from her QR: the page's address with the code): she carries it on.
    scanned = f"http://testserver{page_url(order)}?code={her_code}"
    response = his.post(handoff_url(order), {"code": scanned})
    assert response.status_code == 302
    order = Order.objects.get(pk=order.pk)
    assert order.status == Status.RELAY_ACCEPTED and order.rider == woman
    assert "Handed over." in his.get(page_url(order)).content.decode()
    done = hers.get(page_url(order)).content.decode()
    assert "You carry it now" in done and "<svg" not in done

    # Leg 2 goes on as a normal delivery from her board.
    board = hers.get("/rider/").content.decode()
    assert "Mark: On the way" in board
    for step in (Status.DELIVERING, Status.DELIVERED):
        assert hers.post(f"/rider/orders/{order.number}/advance/", {"to": step}).status_code == 302
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED

    # The customer's timeline shows the relay.
    timeline = client_for(student).get(f"/orders/{order.number}/").content.decode()
    assert 'data-status="at_station"' in timeline and 'data-status="relay_accepted"' in timeline
    assert "At transfer station" in timeline and "Relay rider took over" in timeline


def test_the_leg_one_rider_confirms_first_too(at_station, man, woman):
    leg1, leg2 = relay.relay_legs(at_station)
    assert (
        client_for(man).post(handoff_url(at_station), {"code": leg2.handoff_code}).status_code
        == 302
    )
    page = client_for(man).get(page_url(at_station)).content.decode()
    assert 'id="relay-i"' in page
    assert (
        client_for(woman).post(handoff_url(at_station), {"code": leg1.handoff_code}).status_code
        == 302
    )
    assert Order.objects.get(pk=at_station.pk).rider == woman


def test_the_route_page_sends_leg_one_to_the_station(to_women, man):
    relay.relay_plan(order=to_women)
    order_services.order_accept(order=to_women, rider=man)
    route = client_for(man).get(reverse("dispatch:route")).content.decode()
    assert "Hand over at" in route and page_url(to_women) in route
    assert "Deliver" not in route


def test_a_rider_the_building_admits_delivers_it_herself(to_women, woman):
    relay.relay_plan(order=to_women)
    order_services.order_accept(order=to_women, rider=woman)
    board = client_for(woman).get("/rider/").content.decode()
    assert "data-relay-leg" not in board and "Mark: Picked up" in board
    assert client_for(woman).get(page_url(to_women)).status_code == 404


def test_the_hand_over_page_is_chinese_by_default(at_station, woman, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    page = client_for(woman, lang="zh-hans").get(page_url(at_station)).content.decode()
    assert "中转站交接" in page and "确认交接" in page and "Hand-over" not in page


# --- refusals: 4xx in the rider's language, nothing changed -------------------------------------


def test_a_wrong_code_is_refused_and_changes_nothing(at_station, woman):
    before = snapshot(at_station)
    response = client_for(woman).post(handoff_url(at_station), {"code": wrong_code(at_station)})
    assert response.status_code == 400
    assert "That hand-over code is wrong." in response.content.decode()
    assert snapshot(at_station) == before


def test_a_wrong_code_is_refused_in_chinese(at_station, woman, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    _leg1, leg2 = relay.relay_legs(at_station)
    chinese = client_for(woman, lang="zh-hans")
    response = chinese.post(handoff_url(at_station), {"code": wrong_code(at_station)})
    assert response.status_code == 400 and "交接码错误。" in response.content.decode()
    response = chinese.post(handoff_url(at_station), {"code": leg2.handoff_code})
    assert response.status_code == 400 and "这是你自己的交接码" in response.content.decode()


def test_her_own_code_and_a_malformed_code_are_refused(at_station, woman):
    before = snapshot(at_station)
    _leg1, leg2 = relay.relay_legs(at_station)
    own = client_for(woman).post(handoff_url(at_station), {"code": leg2.handoff_code})
    assert own.status_code == 400 and "That is your own code" in own.content.decode()
    for bad in ("", "12ab56", "1234567"):
        response = client_for(woman).post(handoff_url(at_station), {"code": bad})
        assert response.status_code == 400, bad
        assert (
            "6-digit code" in response.content.decode() or "required" in response.content.decode()
        )
    assert snapshot(at_station) == before


def test_too_many_wrong_codes_lock_the_rider_out_for_a_while(at_station, woman):
    leg1, _leg2 = relay.relay_legs(at_station)
    for _ in range(relay.HANDOFF_CODE_TRIES):
        client_for(woman).post(handoff_url(at_station), {"code": wrong_code(at_station)})
    before = snapshot(at_station)
    response = client_for(woman).post(handoff_url(at_station), {"code": leg1.handoff_code})
    assert response.status_code == 400 and "Too many wrong codes" in response.content.decode()
    assert snapshot(at_station) == before


def test_leg_two_placed_early_waits_and_cannot_give_the_order_back(to_women, man, woman):
    relay.relay_plan(order=to_women)
    order = order_services.order_accept(order=to_women, rider=man)
    relay.relay_leg2_assign(order=order, rider=woman)  # an operator placed her early
    board = client_for(woman).get("/rider/").content.decode()
    assert 'data-relay-leg="2"' in board and page_url(order) in board
    assert "Give back" not in board and "Mark: Picked up" not in board
    assert "Give back" in client_for(man).get("/rider/").content.decode()


def test_the_code_cannot_be_entered_before_leg_one_is_at_the_station(picked_up, man, woman):
    relay.relay_leg2_assign(order=picked_up, rider=woman)  # an operator placed her early
    before = snapshot(picked_up)
    page = client_for(woman).get(page_url(picked_up)).content.decode()
    assert 'id="relay-waiting"' in page and 'id="relay-form"' not in page
    leg1, _leg2 = relay.relay_legs(picked_up)
    response = client_for(woman).post(handoff_url(picked_up), {"code": leg1.handoff_code})
    assert response.status_code == 409
    assert "has not reached the station yet" in response.content.decode()
    assert snapshot(picked_up) == before


def test_leg_one_cannot_confirm_before_leg_two_has_a_rider(picked_up, man):
    order = relay.relay_arrive(order=picked_up, rider=man)
    _leg1, leg2 = relay.relay_legs(order)
    before = snapshot(order)
    response = client_for(man).post(handoff_url(order), {"code": leg2.handoff_code})
    assert (
        response.status_code == 409 and "No rider has the second leg" in response.content.decode()
    )
    assert snapshot(order) == before


def test_only_leg_one_marks_the_arrival_and_only_after_the_pickup(to_women, man, woman):
    relay.relay_plan(order=to_women)
    order = order_services.order_accept(order=to_women, rider=man)
    before = snapshot(order)
    early = client_for(man).post(arrive_url(order))
    assert early.status_code == 409 and "Pick the order up" in early.content.decode()
    assert snapshot(order) == before

    order = order_services.order_transition(order=order, to=Status.PICKED_UP, actor=man)
    relay.relay_leg2_assign(order=order, rider=woman)
    before = snapshot(order)
    not_hers = client_for(woman).post(arrive_url(order))
    assert not_hers.status_code == 403
    assert "You carry the second leg" in not_hers.content.decode()
    assert snapshot(order) == before

    assert client_for(man).post(arrive_url(order)).status_code == 302
    before = snapshot(order)
    twice = client_for(man).post(arrive_url(order))
    assert twice.status_code == 409
    assert snapshot(order) == before


def test_strangers_get_404_and_non_riders_403(at_station, campus, student, woman):
    leg1, _leg2 = relay.relay_legs(at_station)
    before = snapshot(at_station)
    stranger = factories.make_rider(campus, gender="female")
    for url in (page_url(at_station), reverse("dispatch:relay_state", args=[at_station.number])):
        assert client_for(stranger).get(url).status_code == 404
    response = client_for(stranger).post(handoff_url(at_station), {"code": leg1.handoff_code})
    assert response.status_code == 404
    assert client_for(stranger).post(arrive_url(at_station)).status_code == 404
    # The customer is no rider: the riders-only page, nothing else.
    assert client_for(student).post(handoff_url(at_station), {"code": "1"}).status_code == 403
    assert client_for(student).get(page_url(at_station)).status_code == 403
    assert (
        client_for(woman)
        .get(page_url(factories.make_order(customer=student, campus=campus)))
        .status_code
        == 404
    )
    assert client_for(woman).get(reverse("dispatch:relay", args=["nope"])).status_code == 404
    assert snapshot(at_station) == before


def test_anonymous_visitors_are_sent_to_log_in(at_station):
    leg1, _leg2 = relay.relay_legs(at_station)
    before = snapshot(at_station)
    for response in (
        client_for(None).get(page_url(at_station)),
        client_for(None).post(arrive_url(at_station)),
        client_for(None).post(handoff_url(at_station), {"code": leg1.handoff_code}),
    ):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert snapshot(at_station) == before


def test_get_on_the_buttons_is_405_with_a_sentence(at_station, man):
    before = snapshot(at_station)
    for url in (arrive_url(at_station), handoff_url(at_station) + "?code=123456"):
        response = client_for(man).get(url)
        assert response.status_code == 405 and response["Allow"] == "POST"
        assert "This is a button on the hand-over page" in response.content.decode()
    assert snapshot(at_station) == before


def test_the_qr_address_prefills_the_form_without_confirming(at_station, woman):
    leg1, _leg2 = relay.relay_legs(at_station)
    before = snapshot(at_station)
    page = client_for(woman).get(page_url(at_station) + f"?code={leg1.handoff_code}")
    assert f'value="{leg1.handoff_code}"' in page.content.decode()
    assert snapshot(at_station) == before
