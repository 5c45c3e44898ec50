"""WebSocket consumers: authenticate, join groups, relay. Work happens in services."""

import json
from datetime import datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _

from orders.errors import OrderError
from orders.permissions import user_can_view_order
from orders.selectors import order_detail_qs
from tracking import broadcast, services
from tracking.snapshot import order_snapshot

FORBIDDEN = 4403


@database_sync_to_async
def _snapshot_for(user, number: str) -> dict | None:
    order = order_detail_qs().filter(number=number).first()
    if order is None or not user_can_view_order(user, order):
        return None
    return order_snapshot(order, user)


@database_sync_to_async
def _record_location(user, content: dict) -> dict:
    try:
        lat = float(content["lat"])
        lng = float(content["lng"])
        accuracy = content.get("accuracy")
        accuracy = float(accuracy) if accuracy is not None else None
        recorded_at = datetime.fromisoformat(str(content["recorded_at"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        raise services.LocationRejected(
            _("A location needs lat, lng and recorded_at (ISO 8601).")
        ) from None
    return services.location_record(
        rider=user, lat=lat, lng=lng, accuracy=accuracy, recorded_at=recorded_at
    )


@database_sync_to_async
def _is_rider(user) -> bool:
    return user.is_authenticated and hasattr(user, "rider_profile")


class OrderConsumer(AsyncJsonWebsocketConsumer):
    """/ws/orders/<number>/: the order's customer, its rider and operators only."""

    async def connect(self):
        user = self.scope["user"]
        number = self.scope["url_route"]["kwargs"]["number"]
        self.group = None
        if not user.is_authenticated:
            await self.close(code=FORBIDDEN)
            return
        # Join before reading the snapshot, so that no change falls between the two.
        self.group = broadcast.order_group(number)
        await self.channel_layer.group_add(self.group, self.channel_name)
        snapshot = await _snapshot_for(user, number)
        if snapshot is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=FORBIDDEN)
            return
        await self.accept()
        await self.send_json(snapshot)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Watchers only ever ask for a resync; anything else (even a bad frame) is ignored
        # rather than allowed to crash the socket.
        try:
            content = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(content, dict) and content.get("type") == "resync":
            snapshot = await _snapshot_for(
                self.scope["user"], self.scope["url_route"]["kwargs"]["number"]
            )
            if snapshot:
                await self.send_json(snapshot)

    async def order_status(self, event):
        await self.send_json(event["payload"])

    async def order_location(self, event):
        await self.send_json(event["payload"])


class RiderConsumer(AsyncJsonWebsocketConsumer):
    """/ws/rider/: a rider streams {"type": "location", lat, lng, accuracy, recorded_at}."""

    async def connect(self):
        user = self.scope["user"]
        self.group = None
        if not await _is_rider(user):
            await self.close(code=FORBIDDEN)
            return
        self.group = broadcast.rider_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Bad frames get an error frame; the socket stays open.
        try:
            content = json.loads(text_data or "")
        except (TypeError, ValueError):
            await self.send_json({"type": "error", "message": _("Malformed message: not JSON.")})
            return
        if not isinstance(content, dict) or content.get("type") != "location":
            await self.send_json({"type": "error", "message": _("Unknown message type.")})
            return
        try:
            position = await _record_location(self.scope["user"], content)
        except OrderError as exc:
            await self.send_json(
                {
                    "type": "error",
                    "code": exc.code,
                    "message": str(exc.message),
                    "ref": content.get("recorded_at"),
                }
            )
            return
        await self.send_json({"type": "ack", "recorded_at": position["recorded_at"]})

    async def order_status(self, event):
        await self.send_json(event["payload"])
