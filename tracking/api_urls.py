from django.urls import path

from tracking import api

urlpatterns = [
    path("rider/location/", api.RiderLocationApi.as_view(), name="rider-location"),
    path("ops/tracking-stats/", api.TrackingStatsApi.as_view(), name="tracking-stats"),
    path("ops/map/", api.OpsMapApi.as_view(), name="ops-map"),
    path(
        "ops/riders/<int:rider_id>/route/", api.OpsRiderRouteApi.as_view(), name="ops-rider-route"
    ),
    path("orders/<str:number>/snapshot/", api.OrderSnapshotApi.as_view(), name="order-snapshot"),
    path("orders/<str:number>/chat/", api.OrderChatApi.as_view(), name="order-chat"),
]
