from django.db.models import Exists, OuterRef, Prefetch, QuerySet, prefetch_related_objects

from campus_errand.compiled import Compiled
from orders.models import Order, OrderEvent
from orders.status import ACTIVE

DETAIL_RELATED = (
    "campus",
    "customer",
    "rider",
    "pickup_building",
    "dropoff_building",
)


def _events() -> Prefetch:
    return Prefetch("events", queryset=OrderEvent.objects.order_by("created_at", "pk"))


def order_detail_qs() -> QuerySet[Order]:
    return Order.objects.select_related(*DETAIL_RELATED).prefetch_related(_events())


def _snapshot_order(number: str):
    from tracking.models import ChatMessage

    # has_chat: most orders have no chat message, and then tracking.chat reads none.
    return (
        Order.objects.select_related("rider")
        .annotate(has_chat=Exists(ChatMessage.objects.filter(order=OuterRef("pk"))))
        .filter(number=number)
    )


def _snapshot_events(order_id: int):
    return OrderEvent.objects.filter(order_id=order_id).order_by("created_at", "pk")


# Every order socket opens with these two reads, and a crowd of sockets reconnects at once after a
# deploy: compiled to SQL once (campus_errand.compiled), they cost a tenth of the ORM's price.
_snapshot_order_read = Compiled(_snapshot_order, str)
_snapshot_events_read = Compiled(_snapshot_events, int)


def order_for_snapshot(number: str) -> Order | None:
    """An order as ``order_detail_qs`` gives it, for the first message of an order socket: its
    rider and events read from the database (two compiled reads), its buildings and campus from
    the memo (campus.selectors.building_remembered). The customer is not loaded (the snapshot
    needs only customer_id); ``has_chat`` says whether the order has a chat message at all."""
    from campus.selectors import building_remembered

    order = _snapshot_order_read.first(number)
    if order is None:
        return None
    _events_known(order, _snapshot_events_read.all(order.pk))
    order.pickup_building = building_remembered(order.pickup_building_id)
    order.dropoff_building = building_remembered(order.dropoff_building_id)
    order.campus = order.dropoff_building.campus
    return order


def _events_known(order: Order, events: list) -> None:
    """Leave the order's events as prefetch_related("events") leaves them (Django's own way of
    doing it): ``order.events.all()`` then reads them without a query."""
    found = order.events.all()
    found._result_cache = events
    found._prefetch_done = True
    cache = order.__dict__.setdefault("_prefetched_objects_cache", {})
    cache[Order.events.field.remote_field.cache_name] = found


def order_detail_of_new(order: Order) -> Order:
    """An order just placed by order_create, as order_detail_qs reads one: its related rows are
    the ones it was made with, so only its events are read."""
    prefetch_related_objects([order], _events())
    return order


def order_list_for_customer(user) -> QuerySet[Order]:
    return Order.objects.filter(customer=user).select_related(*DETAIL_RELATED)


def order_list_for_rider(user) -> QuerySet[Order]:
    return Order.objects.filter(rider=user).select_related(*DETAIL_RELATED)


def order_active_for_customer(user) -> QuerySet[Order]:
    return order_list_for_customer(user).filter(status__in=ACTIVE)


def rider_rating_summary(rider) -> dict:
    """{"count", "average"} of the stars customers gave this rider (for the credit score)."""
    from django.db.models import Avg, Count

    from orders.models import Rating

    row = Rating.objects.filter(rider=rider).aggregate(count=Count("pk"), average=Avg("stars"))
    average = round(row["average"], 2) if row["average"] is not None else None
    return {"count": row["count"], "average": average}


def customer_rating_summary(customer) -> dict:
    """{"count", "average"} of the stars riders gave this customer (shown to riders, no name)."""
    from django.db.models import Avg, Count

    from orders.models import CustomerRating

    row = CustomerRating.objects.filter(customer=customer).aggregate(
        count=Count("pk"), average=Avg("stars")
    )
    average = round(row["average"], 2) if row["average"] is not None else None
    return {"count": row["count"], "average": average}
