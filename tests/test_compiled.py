"""campus_errand/compiled.py: querysets compiled to SQL once, run with new values."""

import threading

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext

from campus_errand.compiled import Compiled
from orders import services
from orders.models import Order, OrderEvent
from tests import factories
from tracking.models import ChatMessage


def _with_rider(number):
    return (
        Order.objects.select_related("rider")
        .annotate(has_chat=Exists(ChatMessage.objects.filter(order=OuterRef("pk"))))
        .filter(number=number)
    )


by_number = Compiled(_with_rider, str)
events_of = Compiled(lambda pk: OrderEvent.objects.filter(order_id=pk).order_by("pk"), int)
numbers_of = Compiled(lambda pk: Order.objects.filter(customer_id=pk).values("number"), int)


@pytest.fixture
def two_orders(student, campus, rider_male):
    first = factories.make_order(customer=student, campus=campus)
    second = factories.make_order(customer=student, campus=campus)
    return first, services.order_accept(order=second, rider=rider_male)


def test_a_compiled_read_gives_what_the_orm_gives(two_orders, rider_male):
    for order in two_orders:
        expected = _with_rider(order.number).get()
        found = by_number.first(order.number)
        for field in Order._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(expected, field.attname), field
        assert found.has_chat is False
        assert found.rider == expected.rider
    assert by_number.first(two_orders[1].number).rider.public_name == rider_male.public_name
    assert by_number.first("no such number") is None


def test_each_run_is_one_query_with_its_own_values(two_orders, student):
    by_number.first(two_orders[0].number)  # compiled
    with CaptureQueriesContext(connection) as queries:
        a = by_number.first(two_orders[0].number)
        b = by_number.first(two_orders[1].number)
        a.rider  # noqa: B018 -- loaded with the order: no query
    assert (a.pk, b.pk) == (two_orders[0].pk, two_orders[1].pk)
    assert len(queries) == 2
    assert [e.pk for e in events_of.all(a.pk)] == list(
        OrderEvent.objects.filter(order=a).order_by("pk").values_list("pk", flat=True)
    )
    assert sorted(r["number"] for r in numbers_of.all(student.pk)) == sorted(
        o.number for o in two_orders
    )


def test_a_value_the_orm_would_rewrite_is_refused_when_compiled(db):
    contains = Compiled(lambda text: Order.objects.filter(description__contains=text), str)
    with pytest.raises(ValueError, match="did not reach the SQL unchanged"):
        contains.all("x")


def test_arguments_are_checked(db):
    with pytest.raises(TypeError):
        by_number.all(123)
    with pytest.raises(TypeError):
        by_number.all()
    with pytest.raises(TypeError):
        Compiled(lambda when: Order.objects.filter(created_at=when), object)


def test_each_thread_compiles_for_its_own_connection(db):
    """Threads hold their own database connections; a plan never crosses them."""
    plans = []

    def run():
        try:
            by_number.first("no such number")
            plans.append(by_number._local.plan)
        finally:
            connection.close()  # this thread's own

    by_number.first("no such number")
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert plans and plans[0] is not by_number._local.plan
    assert plans[0].connection is not by_number._local.plan.connection
