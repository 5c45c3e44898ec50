"""The full state of one order as one watcher sees it: the first message on every order socket,
the answer to a resync, and what GET /api/orders/<number>/snapshot/ returns (the polling
fallback when sockets are blocked)."""

from campus.graph import campus_graph
from orders.status import status_meta
from tracking import broadcast, chat, eta
from tracking.privacy import rider_visible_to


def _place(building, detail: str) -> dict:
    return {
        "name": building.display_name,
        "detail": detail,
        "lat": building.lat,
        "lng": building.lng,
    }


def viewer_role(order, viewer) -> str:
    if viewer.pk == order.customer_id:
        return "customer"
    if order.rider_id is not None and viewer.pk == order.rider_id:
        return "rider"
    return "operator" if viewer.is_staff else "other"


def order_snapshot(order, viewer) -> dict:
    """`order` from orders.selectors.order_detail_qs (events prefetched); `viewer` may see it."""
    reads = eta.snapshot_reads(order)  # one trip to the cache for the position and the ETA
    position = reads.position
    shown = position if rider_visible_to(order, viewer) else None
    chat_state = chat.chat_state(order, viewer)
    distances = eta.PathDistances(campus_graph(order.campus))  # shared by the path and the ETA
    return {
        "type": "snapshot",
        "number": order.number,
        **status_meta(order.status),
        "viewer": viewer_role(order, viewer),
        "pickup": _place(order.pickup_building, order.pickup_detail),
        "dropoff": _place(order.dropoff_building, order.dropoff_detail),
        "timeline": [broadcast.event_payload(e) for e in order.events.all()],
        "rider": broadcast.rider_card(order),
        "position": shown,
        "route": eta.remaining_route(order, shown, distances=distances),
        # The estimate uses the rider's position even when the viewer may not see it: a time
        # tells nobody where the rider is.
        "eta": eta.eta_for_snapshot(order, reads, distances=distances),
        "promised_at": order.promised_at.isoformat() if order.promised_at else None,
        "chat": chat_state.payload() if chat_state else None,
    }
