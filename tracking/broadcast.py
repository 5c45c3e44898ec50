"""The one owner of channel group names and pushed payload shapes.

Services call these after their writes; pushes go out only when the transaction commits, so a
rolled-back change is never shown to anyone.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

OPS_GROUP = "ops"


def order_group(number: str) -> str:
    return f"order.{number}"


def rider_group(user_id: int) -> str:
    return f"rider.{user_id}"


def status_payload(order, event) -> dict:
    from orders.status import status_meta

    return {
        "type": "status",
        "number": order.number,
        **status_meta(order.status),
        "event": event_payload(event),
        "rider": rider_card(order),
    }


def event_payload(event) -> dict:
    from orders.status import status_meta

    return {**status_meta(event.new_status), "at": event.created_at.isoformat(), "note": event.note}


def rider_card(order) -> dict | None:
    if order.rider_id is None:
        return None
    return {"name": order.rider.public_name}


def location_payload(position: dict) -> dict:
    return {"type": "location", **position}


def order_changed_on_commit(order, event) -> None:
    payload = status_payload(order, event)
    groups = [order_group(order.number), OPS_GROUP]
    if order.rider_id:
        groups.append(rider_group(order.rider_id))
    transaction.on_commit(lambda: send(groups, "order.status", payload))


def location_changed_on_commit(numbers: list[str], position: dict) -> None:
    payload = location_payload(position)
    groups = [order_group(n) for n in numbers] + [OPS_GROUP]
    transaction.on_commit(lambda: send(groups, "order.location", payload))


def send(groups: list[str], event_type: str, payload: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": event_type, "payload": payload}
    for group in groups:
        async_to_sync(layer.group_send)(group, message)
