from django.db.models import QuerySet

from orders.models import Order
from orders.rules import eligible_orders_q
from orders.selectors import DETAIL_RELATED
from orders.status import WITH_RIDER, Status


def rider_board(user) -> QuerySet[Order]:
    """Open orders this rider may take: their campus, their pool, buildings they may enter."""
    profile = user.rider_profile
    return (
        Order.objects.filter(status=Status.OPEN, campus_id=profile.campus_id)
        .filter(eligible_orders_q(user.gender))
        .exclude(customer=user)
        .select_related(*DETAIL_RELATED)
        .order_by("created_at")
    )


def rider_active_orders(user) -> QuerySet[Order]:
    return (
        Order.objects.filter(rider=user, status__in=WITH_RIDER)
        .select_related(*DETAIL_RELATED)
        .order_by("accepted_at")
    )
