"""The one owner of channel group names and pushed payload shapes.

Services call these after their writes; pushes go out only when the transaction commits, so a
rolled-back change is never shown to anyone.

A pushed message is serialised to JSON once, here: the channel layer carries the text
(`"text"`) and consumers write it to their sockets as it is. Status and other messages also carry
the payload as a dict (`"payload"`) for consumers that look inside; locations, the hottest
message, carry the text only, with the rider and their live fix counter (`"rider"`, `"n"`) by
which a watcher notices a push that the layer lost (tracking.stats).
"""

import json
import weakref

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from tracking import stats

OPS_GROUP = "ops"
LOCATION_EVENT = "order.location"
STATUS_EVENT = "order.status"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


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


def location_payload(position: dict, seq: int | None = None) -> dict:
    """{"type": "location", rider, lat, lng, accuracy, recorded_at[, seq]}: seq is the phone's
    own sequence number, passed through when it sent one."""
    payload = {"type": "location", **position}
    if seq is not None:
        payload["seq"] = seq
    return payload


def location_message(*, rider_id: int, n: int, payload: dict) -> dict:
    """A location push carries its text only (no "payload" dict: the hottest message is the
    smallest to encode and decode); consumers that look inside parse the text."""
    return {"type": LOCATION_EVENT, "text": _dumps(payload), "rider": rider_id, "n": n}


def location_groups(numbers) -> list[str]:
    return [order_group(n) for n in numbers] + [OPS_GROUP]


def order_changed_on_commit(order, event) -> None:
    from tracking import live

    payload = status_payload(order, event)
    groups = [order_group(order.number), OPS_GROUP]
    if order.rider_id:
        groups.append(rider_group(order.rider_id))
    number, rider_id = order.number, order.rider_id

    def push():
        # Re-route the rider's fixes before anyone hears of the change.
        live.order_routing_changed(number, rider_id)
        send(groups, STATUS_EVENT, payload)

    transaction.on_commit(push)


def location_changed_on_commit(groups: list[str], payload: dict) -> None:
    """The sync door (HTTP fallback). Its push carries no fix counter: watchers start counting
    afresh at the next socket fix instead of seeing a gap."""
    transaction.on_commit(lambda: send(groups, LOCATION_EVENT, payload))


def send(groups: list[str], event_type: str, payload: dict) -> None:
    """Push from sync code: the payload is serialised once for all the groups."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": event_type, "text": _dumps(payload), "payload": payload}
    async_to_sync(push)(layer, groups, message)


async def push(layer, groups: list[str], message: dict) -> None:
    """group_send to each group; a failure is counted and logged as loss, never silent."""
    if layer is None:
        return
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception as exc:
            stats.loss("push_failed", 1, f"{group}: {exc!r}")
        else:
            stats.incr("pushes")


_pubsub_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pubsub_channel_names(layer, client):
    """channels-redis's group -> Redis channel naming when `layer` is its pub/sub layer on the
    same Redis server as `client` (a single shard), else None.

    Then a fix can be published by the script that stores it (tracking.live.RedisHotPath):
    exactly what the layer's group_send would publish (its channel name, its serialisation),
    in the same round trip as the position.
    """
    try:
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:  # pragma: no cover - channels-redis is a requirement
        return None
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    loop_layer = layer._get_layer()
    found = _pubsub_names.get(loop_layer)
    if found is None:
        found = None, None
        shards = getattr(loop_layer, "_shards", [])
        if len(shards) == 1:
            from redis.connection import parse_url

            host = shards[0].host
            address = host.get("address") if isinstance(host, dict) else None
            ours = client.connection_pool.connection_kwargs
            if address and _server(parse_url(address)) == _server(ours):
                found = (loop_layer._get_group_channel_name, None)
        _pubsub_names[loop_layer] = found
    return found[0]


def _server(kwargs: dict) -> tuple:
    return (kwargs.get("host", "localhost"), int(kwargs.get("port", 6379)), kwargs.get("path"))


# --- dispatch --------------------------------------------------------------------------------
# Offers go to the rider's group (RiderConsumer.dispatch_offer relays them). Operators' dispatch
# alerts go to their own group, so that an ops socket joins it only once it handles them.
OFFER_EVENT = "dispatch.offer"
AT_RISK_EVENT = "dispatch.at_risk"
OPS_DISPATCH_GROUP = "ops.dispatch"
# What a rider may see of the cost terms that chose them (not the other riders' costs).
_RIDER_TERMS = ("pickup_distance_m", "to_pickup_s", "delivery_s", "extra_travel_s")


def _place(building) -> dict:
    return {"name": building.display_name, "lat": building.lat, "lng": building.lng}


def offer_payload(offer) -> dict:
    order = offer.order
    return {
        "type": "offer",
        "id": offer.pk,
        "status": offer.status,
        "number": order.number,
        "kind": order.kind,
        "pickup": _place(order.pickup_building),
        "dropoff": _place(order.dropoff_building),
        "fee_fen": order.price_fen,
        "expires_at": offer.expires_at.isoformat(),
        "terms": {k: offer.terms[k] for k in _RIDER_TERMS if k in (offer.terms or {})},
    }


def offer_made_on_commit(offer) -> None:
    """A new offer, or a change to one (answered, expired, withdrawn): the rider's app shows
    pending offers with a countdown and drops the others."""
    payload = offer_payload(offer)
    groups = [rider_group(offer.rider_id)]
    transaction.on_commit(lambda: send(groups, OFFER_EVENT, payload))


BOARD_EVENT = "dispatch.board"


def board_changed_on_commit(rider_id: int, *, number: str, reason: str) -> None:
    """Something new on a rider's board that is neither an offer nor a status of an order they
    carry (a relay's second leg given to them): the app reloads its board, which rings for the
    new card."""
    payload = {"type": "board", "number": number, "reason": reason}
    transaction.on_commit(lambda: send([rider_group(rider_id)], BOARD_EVENT, payload))


def order_at_risk_on_commit(*, order, reason: str, promised_at, predicted_at) -> None:
    payload = {
        "type": "at_risk",
        "number": order.number,
        "reason": reason,
        "promised_at": promised_at.isoformat(),
        "predicted_at": predicted_at.isoformat() if predicted_at else None,
    }
    transaction.on_commit(lambda: send([OPS_DISPATCH_GROUP], AT_RISK_EVENT, payload))


# --- order chat, ETA (tracking.chat, tracking.eta) ------------------------------------------------
CHAT_EVENT = "order.chat"
ETA_EVENT = "order.eta"


def chat_payload(number: str, message: dict) -> dict:
    return {"type": "chat", "number": number, "message": message}


def chat_posted_on_commit(order, message: dict) -> None:
    """A chat message goes to the order's page (customer, rider, operators watching) and to the
    rider's app, which may show that a message is waiting."""
    payload = chat_payload(order.number, message)
    groups = [order_group(order.number)]
    if order.rider_id:
        groups.append(rider_group(order.rider_id))
    transaction.on_commit(lambda: send(groups, CHAT_EVENT, payload))


def eta_payload(number: str, eta: dict | None, route: list | None = None) -> dict:
    """{"type": "eta", number, eta[, route]}: a new estimate, and the path still ahead when it
    changed (the rider moved on, or a stop was added before this one)."""
    payload = {"type": "eta", "number": number, "eta": eta}
    if route is not None:
        payload["route"] = route
    return payload


def eta_message(number: str, eta: dict | None, route: list | None = None) -> dict:
    payload = eta_payload(number, eta, route)
    return {"type": ETA_EVENT, "text": _dumps(payload), "payload": payload}


# --- the operators' live map (tracking.consumers.OpsConsumer) ---------------------------------
# The ops socket joins OPS_GROUP (every rider's fixes, every order's status) and
# OPS_DISPATCH_GROUP (at-risk alerts); it sends fixes to the page in batches:
OPS_POSITIONS = "positions"


def ops_positions_payload(positions: list[dict]) -> dict:
    return {"type": OPS_POSITIONS, "positions": positions}


# --- merchants (takeout) ------------------------------------------------------------------------
# A merchant's open inboxes (merchants.consumers.MerchantInboxConsumer) listen on its group. The
# payload is small: the page fetches the ticket list fragment again, so that a socket that missed
# something catches up on the next push or reconnect.
MERCHANT_TICKET_EVENT = "merchant.ticket"


def merchant_group(merchant_id: int) -> str:
    return f"merchant.{merchant_id}"


def merchant_ticket_payload(ticket, event: str) -> dict:
    """event: "new" (an order to accept: the inbox rings), "changed", "cancelled"."""
    return {
        "type": "ticket",
        "event": event,
        "number": ticket.order.number,
        "ticket_no": ticket.ticket_no,
        "merchant_status": ticket.merchant_status,
        "order_status": ticket.order.status,
    }


def merchant_ticket_changed_on_commit(ticket, event: str) -> None:
    payload = merchant_ticket_payload(ticket, event)
    groups = [merchant_group(ticket.merchant_id)]
    transaction.on_commit(lambda: send(groups, MERCHANT_TICKET_EVENT, payload))
