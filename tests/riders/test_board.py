"""The rider board (抢单): which open orders a rider sees; it agrees with who may accept."""

import itertools

import pytest
from django.test import Client

from orders import services
from orders.models import RequiredGender
from orders.rules import rider_refusal
from orders.status import Status
from riders.selectors import rider_board
from tests import factories

# Every order a customer can place on the test campus: drop-off x asked rider gender.
DROPOFFS = {"D1": "male_only", "D2": "female_only", "D3": "any"}
VARIANTS = [
    (dropoff, gender)
    for dropoff, gender in itertools.product(DROPOFFS, RequiredGender.values)
    if not (DROPOFFS[dropoff] == "male_only" and gender == "female")
    and not (DROPOFFS[dropoff] == "female_only" and gender == "male")
]


@pytest.fixture
def every_kind_of_order(student, campus):
    return {
        (dropoff, gender): factories.make_order(
            customer=student, campus=campus, dropoff=dropoff, required_gender=gender
        )
        for dropoff, gender in VARIANTS
    }


def board_numbers(client) -> list[str]:
    response = client.get("/api/rider/board/")
    assert response.status_code == 200
    return [o["number"] for o in response.json()]


def test_male_rider_sees_no_women_only_dorm_and_no_asked_for_female(
    every_kind_of_order, rider_male, api
):
    seen = set(board_numbers(api(rider_male)))
    expected = {
        order.number
        for (dropoff, gender), order in every_kind_of_order.items()
        if dropoff != "D2" and gender != "female"
    }
    assert seen == expected
    assert every_kind_of_order[("D2", "any")].number not in seen
    assert every_kind_of_order[("D3", "female")].number not in seen


def test_female_rider_sees_no_men_only_dorm_and_no_asked_for_male(
    every_kind_of_order, rider_female, api
):
    seen = set(board_numbers(api(rider_female)))
    expected = {
        order.number
        for (dropoff, gender), order in every_kind_of_order.items()
        if dropoff != "D1" and gender != "male"
    }
    assert seen == expected


@pytest.mark.parametrize("gender", ["male", "female", "undisclosed"])
def test_board_shows_exactly_the_orders_the_rider_may_accept(gender, every_kind_of_order, campus):
    """The board's query and the accept rule are two forms of one rule: they must agree."""
    rider = factories.make_rider(campus, gender=gender)
    on_board = {o.number for o in rider_board(rider)}
    for key, order in every_kind_of_order.items():
        may_accept = rider_refusal(rider, order) is None
        assert (order.number in on_board) == may_accept, (gender, key)


def test_board_ranks_better_paid_orders_first_then_oldest(student, campus, rider_male, api):
    # Equal distance and deadline here: the fee decides (a third waiting order is quoted with the
    # peak surcharge), then age.
    orders = [factories.make_order(customer=student, campus=campus) for _ in range(3)]
    board = api(rider_male).get("/api/rider/board/").json()
    assert {o["number"] for o in board} == {o.number for o in orders}
    ranked = sorted(board, key=lambda o: (-o["price_fen"], o["created_at"]))
    assert [o["number"] for o in board] == [o["number"] for o in ranked]


def test_board_leaves_out_taken_cancelled_own_and_other_campus_orders(
    student, campus, rider_male, rider_female, api
):
    visible = factories.make_order(customer=student, campus=campus)
    taken = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=taken, rider=rider_female)
    cancelled = factories.make_order(customer=student, campus=campus)
    services.order_transition(order=cancelled, to=Status.CANCELLED, actor=student)
    factories.make_order(customer=rider_male, campus=campus)  # the rider's own errand
    factories.make_order(customer=student, campus=factories.make_campus())

    assert board_numbers(api(rider_male)) == [visible.number]


def test_accepted_order_leaves_every_board(order, rider_male, campus, api):
    other = factories.make_rider(campus, gender="male")
    assert board_numbers(api(other)) == [order.number]
    services.order_accept(order=order, rider=rider_male)
    assert board_numbers(api(other)) == []


def test_released_order_comes_back_to_the_board(order, rider_male, campus, api):
    other = factories.make_rider(campus, gender="female")
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.OPEN, actor=rider_male)
    assert board_numbers(api(other)) == [order.number]


def test_offline_and_unapproved_riders_see_an_empty_board(order, campus, api):
    offline = factories.make_rider(campus, gender="female", online=False)
    unapproved = factories.make_rider(campus, gender="female", verified=False)
    assert board_numbers(api(offline)) == []
    assert board_numbers(api(unapproved)) == []


def test_board_page_hides_what_the_rider_may_not_take(student, campus, rider_male):
    women_only = factories.make_order(customer=student, campus=campus, dropoff="D2")
    anyone = factories.make_order(customer=student, campus=campus, dropoff="D3")
    client = Client()
    client.force_login(rider_male)
    html = client.get("/rider/").content.decode()
    assert f"/rider/orders/{anyone.number}/accept/" in html
    assert f"/rider/orders/{women_only.number}/accept/" not in html


def test_going_online_from_the_board_page(campus):
    rider = factories.make_rider(campus, gender="male", online=False)
    client = Client()
    client.force_login(rider)
    response = client.post("/rider/online/", {"online": "1"})
    assert response.status_code == 302
    rider.rider_profile.refresh_from_db()
    assert rider.rider_profile.online
    client.post("/rider/online/", {"online": "0"})
    rider.rider_profile.refresh_from_db()
    assert not rider.rider_profile.online
