"""The order life: every allowed transition and its actor, the refused ones, the log."""

import pytest
from django.db import transaction

from orders import services
from orders.errors import InvalidTransition, NotAllowed, OrderTaken
from orders.models import Order, OrderEvent
from orders.status import FINAL, TRANSITIONS, Status
from tests import factories

# Who makes each allowed move. None is the platform itself (payment callback, expiry, dispatch).
ACTOR = {
    (Status.PENDING, Status.OPEN): None,
    (Status.PENDING, Status.CANCELLED): "customer",
    (Status.OPEN, Status.ACCEPTED): "rider",
    (Status.OPEN, Status.CANCELLED): "customer",
    (Status.OPEN, Status.EXPIRED): None,
    (Status.ACCEPTED, Status.PICKED_UP): "rider",
    (Status.ACCEPTED, Status.CANCELLED): "customer",
    (Status.ACCEPTED, Status.OPEN): "rider",
    (Status.PICKED_UP, Status.DELIVERING): "rider",
    (Status.PICKED_UP, Status.AT_STATION): "rider",
    (Status.AT_STATION, Status.RELAY_ACCEPTED): "operator",
    (Status.RELAY_ACCEPTED, Status.DELIVERING): "rider",
    (Status.DELIVERING, Status.DELIVERED): "rider",
    (Status.DELIVERED, Status.COMPLETED): "customer",
}

# How an open order reaches each status through the real service: (to, actor) steps.
PATH = {
    Status.OPEN: [],
    Status.ACCEPTED: [(Status.ACCEPTED, "rider")],
    Status.PICKED_UP: [(Status.ACCEPTED, "rider"), (Status.PICKED_UP, "rider")],
    Status.AT_STATION: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.AT_STATION, "rider"),
    ],
    Status.RELAY_ACCEPTED: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.AT_STATION, "rider"),
        (Status.RELAY_ACCEPTED, "operator"),
    ],
    Status.DELIVERING: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.DELIVERING, "rider"),
    ],
    Status.DELIVERED: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.DELIVERING, "rider"),
        (Status.DELIVERED, "rider"),
    ],
    Status.COMPLETED: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.DELIVERING, "rider"),
        (Status.DELIVERED, "rider"),
        (Status.COMPLETED, "customer"),
    ],
    Status.CANCELLED: [(Status.CANCELLED, "customer")],
    Status.EXPIRED: [(Status.EXPIRED, None)],
}


@pytest.fixture
def people(student, other_student, rider_male, operator):
    return {
        "customer": student,
        "rider": rider_male,
        "stranger": other_student,
        "operator": operator,
        None: None,
    }


def order_in(status: str, order: Order, people: dict) -> Order:
    if status == Status.PENDING:
        # No payment step exists yet, so order_create always opens the order: put it back for
        # the pending cases (test setup only; the service remains the only writer in the code).
        Order.objects.filter(pk=order.pk).update(status=Status.PENDING)
        order.refresh_from_db()
        return order
    for to, who in PATH[status]:
        order = services.order_transition(order=order, to=to, actor=people[who])
    assert order.status == status
    return order


def test_every_allowed_transition_has_a_test_case():
    table = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    assert set(ACTOR) == table
    assert set(PATH) | {Status.PENDING} == set(Status)


@pytest.mark.parametrize(("old", "new"), sorted(ACTOR), ids=lambda s: str(s))
def test_allowed_transition_by_its_actor_appends_one_event(old, new, order, people):
    order = order_in(old, order, people)
    actor = people[ACTOR[(old, new)]]
    before = list(order.events.values_list("pk", flat=True))

    moved = services.order_transition(order=order, to=new, actor=actor, note="test")

    assert moved.status == new
    assert Order.objects.get(pk=order.pk).status == new
    added = OrderEvent.objects.filter(order=order).exclude(pk__in=before)
    assert added.count() == 1
    event = added.get()
    assert (event.old_status, event.new_status, event.actor) == (old, new, actor)
    assert event.note == "test"


# Everyone who may make each allowed move (None: the platform). Everyone else is refused.
MAY = {
    (Status.PENDING, Status.OPEN): {None, "operator"},
    (Status.PENDING, Status.CANCELLED): {"customer", "operator", None},
    (Status.OPEN, Status.ACCEPTED): {"rider", "other_rider"},
    (Status.OPEN, Status.CANCELLED): {"customer", "operator", None},
    (Status.OPEN, Status.EXPIRED): {None, "operator"},
    (Status.ACCEPTED, Status.PICKED_UP): {"rider", "operator", None},
    (Status.ACCEPTED, Status.CANCELLED): {"customer", "operator", None},
    (Status.ACCEPTED, Status.OPEN): {"rider", "operator", None},
    (Status.PICKED_UP, Status.DELIVERING): {"rider", "operator", None},
    (Status.PICKED_UP, Status.AT_STATION): {"rider", "operator", None},
    (Status.AT_STATION, Status.RELAY_ACCEPTED): {"operator", None},
    (Status.RELAY_ACCEPTED, Status.DELIVERING): {"rider", "operator", None},
    (Status.DELIVERING, Status.DELIVERED): {"rider", "operator", None},
    (Status.DELIVERED, Status.COMPLETED): {"customer", "operator", None},
}


class _Undo(Exception):
    pass


@pytest.mark.parametrize(("old", "new"), sorted(MAY), ids=lambda s: str(s))
def test_only_the_right_people_make_each_transition(old, new, order, people, rider_female):
    assert set(MAY) == set(ACTOR)
    order = order_in(old, order, people)
    events = order.events.count()
    everyone = {**people, "other_rider": rider_female}
    allowed = set()
    for role, actor in everyone.items():
        try:
            with transaction.atomic():
                services.order_transition(order=order, to=new, actor=actor)
                raise _Undo  # roll the move back and try the next person
        except _Undo:
            allowed.add(role)
        except NotAllowed:
            pass
    assert allowed == MAY[(old, new)]
    order.refresh_from_db()
    assert order.status == old  # refused (and undone) moves leave the order where it was
    assert order.events.count() == events


@pytest.mark.parametrize("old", list(Status), ids=str)
def test_transitions_outside_the_table_are_refused_even_for_operators(old, order, people):
    order = order_in(old, order, people)
    events = order.events.count()
    refused = [to for to in Status if to not in TRANSITIONS[old]]
    assert refused

    for to in refused:
        with pytest.raises((InvalidTransition, OrderTaken)) as caught:
            services.order_transition(order=order, to=to, actor=people["operator"])
        assert caught.value.http_status == 409

    order.refresh_from_db()
    assert order.status == old
    assert order.events.count() == events


@pytest.mark.parametrize("final", [Status.EXPIRED, Status.CANCELLED, Status.COMPLETED], ids=str)
def test_final_statuses_allow_no_way_out(final, order, people):
    assert final in FINAL and not TRANSITIONS[final]
    order = order_in(final, order, people)
    for to in Status:
        with pytest.raises((InvalidTransition, OrderTaken)):
            services.order_transition(order=order, to=to, actor=None)
    assert Order.objects.get(pk=order.pk).status == final


def test_deliver_before_pickup_is_refused_with_409(order, people):
    order = order_in(Status.ACCEPTED, order, people)
    with pytest.raises(InvalidTransition) as caught:
        services.order_transition(order=order, to=Status.DELIVERED, actor=people["rider"])
    assert caught.value.http_status == 409
    assert "Delivered" in str(caught.value.message)


def test_customer_cannot_mark_own_order_delivered(order, people):
    order = order_in(Status.DELIVERING, order, people)
    with pytest.raises(NotAllowed) as caught:
        services.order_transition(order=order, to=Status.DELIVERED, actor=people["customer"])
    assert caught.value.http_status == 403
    assert "rider" in str(caught.value.message)


@pytest.mark.parametrize("status", [Status.PICKED_UP, Status.DELIVERING], ids=str)
def test_cancel_after_pickup_is_refused(status, order, people):
    order = order_in(status, order, people)
    for who in ("customer", "operator"):
        with pytest.raises(InvalidTransition):
            services.order_transition(order=order, to=Status.CANCELLED, actor=people[who])


def test_customer_may_cancel_an_accepted_order(order, people):
    order = order_in(Status.ACCEPTED, order, people)
    order = services.order_transition(order=order, to=Status.CANCELLED, actor=people["customer"])
    assert order.status == Status.CANCELLED


def test_unassigned_rider_cannot_move_someone_elses_order(order, people, rider_female):
    order = order_in(Status.ACCEPTED, order, people)
    for to in (Status.PICKED_UP, Status.OPEN, Status.CANCELLED):
        with pytest.raises(NotAllowed):
            services.order_transition(order=order, to=to, actor=rider_female)
    assert Order.objects.get(pk=order.pk).rider == people["rider"]


def test_accept_records_the_rider_and_time_and_release_clears_them(order, people):
    order = services.order_accept(order=order, rider=people["rider"])
    assert order.rider == people["rider"] and order.accepted_at is not None

    order = services.order_transition(order=order, to=Status.OPEN, actor=people["rider"])

    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == Status.OPEN
    assert fresh.rider is None and fresh.accepted_at is None


def test_pickup_and_delivery_times_are_stamped(order, people):
    order = order_in(Status.DELIVERED, order, people)
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.accepted_at <= fresh.picked_up_at <= fresh.delivered_at


def test_second_accept_of_a_taken_order_raises_order_taken(order, people, rider_female):
    services.order_accept(order=order, rider=people["rider"])
    with pytest.raises(OrderTaken) as caught:
        services.order_accept(order=order, rider=rider_female)
    assert caught.value.http_status == 409
    assert "already taken" in str(caught.value.message)
    assert order.events.filter(new_status=Status.ACCEPTED).count() == 1


def test_transition_works_from_a_stale_order_instance(order, people):
    """Callers may hold an old copy; the service re-reads the row under lock."""
    stale = Order.objects.get(pk=order.pk)
    services.order_accept(order=order, rider=people["rider"])
    with pytest.raises(OrderTaken):
        services.order_transition(order=stale, to=Status.ACCEPTED, actor=people["rider"])
    moved = services.order_transition(order=stale, to=Status.PICKED_UP, actor=people["rider"])
    assert moved.status == Status.PICKED_UP


def test_placed_order_opens_to_riders_with_a_readable_number(order):
    assert order.status == Status.OPEN
    assert [e.new_status for e in order.events.all()] == [Status.PENDING, Status.OPEN]
    assert len(order.number) == 14 and order.number.isdigit()
    assert order.display_number.replace(" ", "") == order.number


def test_two_orders_get_different_numbers(student, campus):
    numbers = {factories.make_order(customer=student, campus=campus).number for _ in range(5)}
    assert len(numbers) == 5


# --- the log is append-only -------------------------------------------------------------------


def test_order_event_cannot_be_updated_or_deleted(order):
    event = order.events.first()
    event.note = "rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        OrderEvent.objects.filter(order=order).update(note="rewritten")
    with pytest.raises(TypeError):
        OrderEvent.objects.filter(order=order).delete()
    with pytest.raises(TypeError):
        order.events.update(note="rewritten")
    with pytest.raises(TypeError):
        order.events.all().delete()
    with pytest.raises(TypeError), transaction.atomic():
        OrderEvent.objects.bulk_update([event], ["note"])
    assert not OrderEvent.objects.filter(note="rewritten").exists()
    assert order.events.count() == 2


def test_order_with_events_cannot_be_deleted(order):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        order.delete()
