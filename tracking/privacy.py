"""When may whom see a rider's position: the location privacy rules, in one place."""

from orders.status import Status

ON_THE_WAY_FROM_PICKUP = {
    Status.PICKED_UP,
    Status.AT_STATION,
    Status.RELAY_ACCEPTED,
    Status.DELIVERING,
}


def customer_visible_statuses(campus) -> set[str]:
    """A campus setting: the customer sees the rider from acceptance or from pickup, until
    delivery. Never before, never after."""
    if campus.tracking_visible_from == Status.ACCEPTED:
        return ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}
    return set(ON_THE_WAY_FROM_PICKUP)


def rider_visible_to(order, viewer) -> bool:
    if order.rider_id is None or not viewer.is_authenticated:
        return False
    if viewer.pk == order.rider_id:
        return order.status in ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}
    if viewer.is_staff:
        return order.status in ON_THE_WAY_FROM_PICKUP | {Status.ACCEPTED}
    if viewer.pk == order.customer_id:
        return order.status in customer_visible_statuses(order.campus)
    return False
