from django.core.cache import caches
from django.urls import path

from merchants.consumers import MerchantInboxConsumer
from tracking import consumers

# Django keeps its cache clients in an asgiref Local: one per asyncio task unless the context the
# server starts its tasks from already holds one. Without this line every socket (and every
# database_sync_to_async call it makes) opens its own Redis connection pool. The ASGI app imports
# this module before serving, so every consumer inherits this one client.
caches["default"]

websocket_urlpatterns = [
    path("ws/rider/", consumers.RiderConsumer.as_asgi()),
    path("ws/orders/<str:number>/", consumers.OrderConsumer.as_asgi()),
    path("ws/ops/", consumers.OpsConsumer.as_asgi()),
    path("ws/merchant/<slug:slug>/", MerchantInboxConsumer.as_asgi()),
]
