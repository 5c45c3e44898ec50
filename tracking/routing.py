from django.urls import path

from merchants.consumers import MerchantInboxConsumer
from tracking import consumers

websocket_urlpatterns = [
    path("ws/rider/", consumers.RiderConsumer.as_asgi()),
    path("ws/orders/<str:number>/", consumers.OrderConsumer.as_asgi()),
    path("ws/ops/", consumers.OpsConsumer.as_asgi()),
    path("ws/merchant/<slug:slug>/", MerchantInboxConsumer.as_asgi()),
]
