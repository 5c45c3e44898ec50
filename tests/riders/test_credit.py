"""The credit score (信用分): the formula, what it counts, where it is stored and shown."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders import services as order_services
from orders.models import Order
from orders.status import Status
from riders import selectors, services
from riders.credit import CreditInputs, credit_compute
from riders.models import NEW_RIDER_CREDIT, Complaint, RiderProfile
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db


def delivered(rider, customer, campus, *, late: bool) -> Order:
    """An order the rider carried to the end, before or after its promised time."""
    order = factories.make_order(customer=customer, campus=campus)
    for to in (Status.ACCEPTED, Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = order_services.order_transition(order=order, to=to, actor=rider)
    promised = order.delivered_at + (timedelta(minutes=-20) if late else timedelta(minutes=5))
    Order.objects.filter(pk=order.pk).update(promised_at=promised)
    return order


# --- the formula ------------------------------------------------------------------------------


def test_a_new_rider_starts_at_the_stored_default():
    report = credit_compute(CreditInputs())
    assert report.score == NEW_RIDER_CREDIT
    assert RiderProfile._meta.get_field("credit_score").default == NEW_RIDER_CREDIT


def test_a_perfect_record_raises_the_score_and_lateness_lowers_it():
    perfect = credit_compute(
        CreditInputs(
            delivered_with_promise=40, delivered_on_time=40, accepted=40, ratings=(5,) * 30
        )
    )
    late = credit_compute(
        CreditInputs(
            delivered_with_promise=40, delivered_on_time=20, accepted=40, ratings=(5,) * 30
        )
    )
    assert perfect.score >= 98
    assert late.score < perfect.score - 15
    assert late.on_time_rate == pytest.approx((20 + 0.9 * 5) / 45)


def test_giving_orders_back_lowers_the_score():
    kept = credit_compute(CreditInputs(accepted=20))
    released = credit_compute(CreditInputs(accepted=20, released=10))
    assert released.score == kept.score - round(100 * 0.25 * 10 / 25)
    assert any("Giving an order back" in tip for tip in released.tips)
    assert not any("Giving an order back" in tip for tip in kept.tips)


def test_bad_ratings_lower_the_score():
    assert credit_compute(CreditInputs(ratings=(1,) * 10)).score < NEW_RIDER_CREDIT - 15


def test_each_upheld_complaint_costs_five_points_up_to_thirty():
    assert credit_compute(CreditInputs(upheld_complaints=2)).score == NEW_RIDER_CREDIT - 10
    assert credit_compute(CreditInputs(upheld_complaints=50)).score == NEW_RIDER_CREDIT - 30


def test_the_score_stays_between_0_and_100():
    worst = CreditInputs(
        delivered_with_promise=500,
        accepted=500,
        released=500,
        ratings=(1,) * 500,
        upheld_complaints=50,
    )
    assert credit_compute(worst).score == 0


def test_tips_always_say_how_to_raise_it():
    assert credit_compute(CreditInputs()).tips


# --- what it counts ---------------------------------------------------------------------------


def test_on_time_rate_counts_deliveries_against_the_promised_time(rider_male, student, campus):
    delivered(rider_male, student, campus, late=False)
    delivered(rider_male, student, campus, late=False)
    delivered(rider_male, student, campus, late=True)

    inputs = selectors.rider_credit_inputs(rider_male)

    assert (inputs.delivered_with_promise, inputs.delivered_on_time) == (3, 2)
    assert inputs.accepted == 3 and inputs.released == 0


def test_giving_an_order_back_after_accepting_counts(rider_male, student, campus):
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=rider_male)
    order_services.order_transition(order=order, to=Status.OPEN, actor=rider_male)

    inputs = selectors.rider_credit_inputs(rider_male)

    assert (inputs.accepted, inputs.released) == (1, 1)


def test_only_upheld_recent_complaints_count(rider_male, operator):
    upheld = services.complaint_file(rider=rider_male, reason="Rude")
    services.complaint_decide(complaint=upheld, operator=operator, upheld=True)
    dismissed = services.complaint_file(rider=rider_male, reason="Took long")
    services.complaint_decide(complaint=dismissed, operator=operator, upheld=False)
    old = services.complaint_file(rider=rider_male, reason="Long ago")
    services.complaint_decide(complaint=old, operator=operator, upheld=True)
    Complaint.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))

    assert selectors.rider_credit_inputs(rider_male).upheld_complaints == 1


def test_upholding_a_complaint_recomputes_the_stored_score(
    rider_male, operator, django_capture_on_commit_callbacks
):
    complaint = services.complaint_file(rider=rider_male, reason="Rude")
    with django_capture_on_commit_callbacks(execute=True):
        services.complaint_decide(complaint=complaint, operator=operator, upheld=True)
    profile = RiderProfile.objects.get(user=rider_male)
    assert profile.credit_score == NEW_RIDER_CREDIT - 5 and profile.credit_updated_at


def test_ratings_of_the_riders_orders_count(rider_male, rider_female, student, campus):
    first = delivered(rider_male, student, campus, late=False)
    second = delivered(rider_male, student, campus, late=False)
    order_services.order_rate(order=first, customer=student, stars=5)
    order_services.order_rate(order=second, customer=student, stars=2)

    assert sorted(selectors.rider_credit_inputs(rider_male).ratings) == [2.0, 5.0]
    assert selectors.rider_credit_inputs(rider_female).ratings == ()


# --- stored and shown -------------------------------------------------------------------------


def test_recompute_credit_command_stores_every_score(rider_male, rider_female, student, campus):
    delivered(rider_male, student, campus, late=True)
    delivered(rider_male, student, campus, late=True)

    call_command("recompute_credit", verbosity=0)

    male = RiderProfile.objects.get(user=rider_male)
    assert male.credit_score == selectors.rider_credit_report(rider_male).score < NEW_RIDER_CREDIT
    assert RiderProfile.objects.get(user=rider_female).credit_updated_at is not None


def test_delivering_from_the_board_updates_the_score(
    rider_male, student, campus, django_capture_on_commit_callbacks
):
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=rider_male)
    Order.objects.filter(pk=order.pk).update(promised_at=timezone.now() - timedelta(hours=1))
    client = logged_in(rider_male)
    with django_capture_on_commit_callbacks(execute=True):
        for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
            client.post(reverse("riders:advance", args=[order.number]), {"to": to})

    profile = RiderProfile.objects.get(user=rider_male)
    assert profile.credit_updated_at is not None
    assert (
        profile.credit_score
        == credit_compute(
            CreditInputs(delivered_with_promise=1, delivered_on_time=0, accepted=1)
        ).score
    )


def test_the_rider_sees_the_score_and_how_to_raise_it(rider_male, student, campus):
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=rider_male)
    order_services.order_transition(order=order, to=Status.OPEN, actor=rider_male)

    response = logged_in(rider_male).get(reverse("riders:credit"))

    assert response.status_code == 200
    score = selectors.rider_credit_report(rider_male).score
    assert f'id="credit-score">{score}<'.encode() in response.content
    assert b"Giving an order back" in response.content
    assert RiderProfile.objects.get(user=rider_male).credit_score == score


def test_credit_page_and_api_are_for_riders_only(student, api):
    assert Client().get(reverse("riders:credit")).status_code == 302
    assert logged_in(student).get(reverse("riders:credit")).status_code == 403
    assert api().get("/api/rider/credit/").status_code == 401
    assert api(student).get("/api/rider/credit/").status_code == 403


def test_credit_api_gives_the_parts_and_tips(rider_male, api):
    body = api(rider_male).get("/api/rider/credit/").json()
    assert body["score"] == NEW_RIDER_CREDIT
    assert set(body) >= {"level", "on_time_rate", "reliability", "average_stars", "tips"}


# --- recomputed whatever door the order went through ------------------------------------------


def late_order(rider, customer, campus) -> Order:
    """Accepted by the rider, promised an hour ago: its delivery lowers the score."""
    order = factories.make_order(customer=customer, campus=campus)
    order = order_services.order_accept(order=order, rider=rider)
    Order.objects.filter(pk=order.pk).update(promised_at=timezone.now() - timedelta(hours=1))
    return order


LATE_ONCE = credit_compute(
    CreditInputs(delivered_with_promise=1, delivered_on_time=0, accepted=1)
).score


def test_the_hook_recomputes_after_a_delivery(
    rider_male, student, campus, django_capture_on_commit_callbacks
):
    order = late_order(rider_male, student, campus)
    Order.objects.filter(pk=order.pk).update(status=Status.DELIVERED, delivered_at=timezone.now())
    order.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.rider_credit_on_order_transition(
            order=order, old=Status.DELIVERING, new=Status.DELIVERED, actor=rider_male
        )
    assert (
        len(callbacks) == 1 and RiderProfile.objects.get(user=rider_male).credit_updated_at is None
    )
    callbacks[0]()
    assert RiderProfile.objects.get(user=rider_male).credit_score == LATE_ONCE < NEW_RIDER_CREDIT


@pytest.mark.parametrize(
    ("old", "new", "who"),
    [
        (Status.ACCEPTED, Status.OPEN, "actor"),  # given back
        (Status.ACCEPTED, Status.CANCELLED, "rider"),  # cancelled after acceptance
        (Status.DELIVERING, Status.DELIVERED, "rider"),
    ],
)
def test_the_hook_picks_the_rider_concerned(
    rider_male, rider_female, student, campus, old, new, who, django_capture_on_commit_callbacks
):
    order = factories.make_order(customer=student, campus=campus)
    order.rider = rider_female if new != Status.OPEN else None
    with django_capture_on_commit_callbacks(execute=True):
        services.rider_credit_on_order_transition(order=order, old=old, new=new, actor=rider_male)
    recomputed = rider_male if who == "actor" else rider_female
    assert RiderProfile.objects.get(user=recomputed).credit_updated_at is not None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Status.OPEN, Status.ACCEPTED),
        (Status.ACCEPTED, Status.PICKED_UP),
        (Status.DELIVERED, Status.COMPLETED),
        (Status.OPEN, Status.CANCELLED),
    ],
)
def test_the_hook_leaves_other_transitions_alone(
    rider_male, student, campus, old, new, django_capture_on_commit_callbacks
):
    order = factories.make_order(customer=student, campus=campus)
    order.rider = rider_male
    with django_capture_on_commit_callbacks() as callbacks:
        services.rider_credit_on_order_transition(order=order, old=old, new=new, actor=rider_male)
    assert callbacks == []


def test_delivering_through_the_api_updates_the_score(
    api, rider_male, student, campus, django_capture_on_commit_callbacks
):
    order = late_order(rider_male, student, campus)
    client = api(rider_male)
    with django_capture_on_commit_callbacks(execute=True):
        for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
            response = client.post(
                f"/api/orders/{order.number}/transition/", {"to": to}, format="json"
            )
            assert response.status_code == 200, response.json()

    profile = RiderProfile.objects.get(user=rider_male)
    assert profile.credit_updated_at is not None and profile.credit_score == LATE_ONCE


def test_delivering_through_the_order_page_updates_the_score(
    rider_male, student, campus, django_capture_on_commit_callbacks
):
    order = late_order(rider_male, student, campus)
    for to in (Status.PICKED_UP, Status.DELIVERING):
        order_services.order_transition(order=order, to=to, actor=rider_male)
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(rider_male).post(reverse("orders:deliver", args=[order.number]))
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED

    profile = RiderProfile.objects.get(user=rider_male)
    assert profile.credit_updated_at is not None and profile.credit_score == LATE_ONCE


def test_giving_back_through_the_api_updates_the_score(
    api, rider_male, student, campus, django_capture_on_commit_callbacks
):
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=rider_male)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(rider_male).post(
            f"/api/orders/{order.number}/transition/", {"to": Status.OPEN}, format="json"
        )
    assert response.status_code == 200

    profile = RiderProfile.objects.get(user=rider_male)
    assert profile.credit_score == selectors.rider_credit_report(rider_male).score
    assert profile.credit_score < NEW_RIDER_CREDIT
