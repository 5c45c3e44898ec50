"""The merchant's live inbox: /ws/merchant/<slug>/, the merchant's staff and operators only.

Thin: check who it is, join the merchant's group (tracking.broadcast owns its name and payload),
relay. The page fetches the ticket list afresh on every push and on every (re)connect, so a
message lost while the socket was down costs nothing.
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from merchants.models import Merchant
from merchants.permissions import can_run_merchant
from tracking import broadcast
from tracking.auth import socket_user

FORBIDDEN = 4403


@database_sync_to_async
def _merchant_for(user, slug: str) -> int | None:
    merchant = Merchant.objects.filter(slug=slug).first()
    if merchant is None or not can_run_merchant(user, merchant):
        return None
    return merchant.pk


class MerchantInboxConsumer(AsyncWebsocketConsumer):
    group = None

    async def connect(self):
        user = await socket_user(self.scope)
        merchant_id = None
        if user.is_authenticated:
            merchant_id = await _merchant_for(user, self.scope["url_route"]["kwargs"]["slug"])
        if merchant_id is None:
            await self.close(code=FORBIDDEN)
            return
        self.group = broadcast.merchant_group(merchant_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"type": "hello"}))

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        pass  # nothing to say: the inbox acts over HTTP

    async def merchant_ticket(self, event):
        await self.send(text_data=event.get("text") or json.dumps(event["payload"]))
