"""The full state of one order as its watchers see it: the first message on every order socket."""

from campus.graph import campus_graph
from orders.status import Status, status_meta
from tracking import broadcast, live
from tracking.privacy import rider_visible_to


def _place(building, detail: str) -> dict:
    return {
        "name": building.display_name,
        "detail": detail,
        "lat": building.lat,
        "lng": building.lng,
    }


def order_snapshot(order, viewer) -> dict:
    position = None
    if rider_visible_to(order, viewer):
        position = live.position_get(order.rider_id)
    return {
        "type": "snapshot",
        "number": order.number,
        **status_meta(order.status),
        "pickup": _place(order.pickup_building, order.pickup_detail),
        "dropoff": _place(order.dropoff_building, order.dropoff_detail),
        "timeline": [broadcast.event_payload(e) for e in order.events.all()],
        "rider": broadcast.rider_card(order),
        "position": position,
        "route": _remaining_route(order, position),
    }


def _remaining_route(order, position: dict | None) -> list[list[float]]:
    """The planned walking path still ahead, as [lat, lng] pairs for the map."""
    pickup = (order.pickup_building.lng, order.pickup_building.lat)
    dropoff = (order.dropoff_building.lng, order.dropoff_building.lat)
    graph = campus_graph(order.campus)
    if len(graph.nodes) == 0:
        return []
    if order.status in (Status.PENDING, Status.OPEN):
        legs = [(pickup, dropoff)]
    elif order.status == Status.ACCEPTED:
        start = (position["lng"], position["lat"]) if position else pickup
        legs = [(start, pickup), (pickup, dropoff)]
    elif order.status in (Status.PICKED_UP, Status.DELIVERING, Status.RELAY_ACCEPTED):
        start = (position["lng"], position["lat"]) if position else pickup
        legs = [(start, dropoff)]
    else:
        return []
    coords: list[tuple[float, float]] = []
    for a, b in legs:
        coords.extend(graph.route(a, b).coords)
    return [[round(lat, 6), round(lng, 6)] for lng, lat in coords]
