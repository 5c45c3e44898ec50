from django.urls import path

from tracking import api

urlpatterns = [
    path("rider/location/", api.RiderLocationApi.as_view(), name="rider-location"),
    path("ops/tracking-stats/", api.TrackingStatsApi.as_view(), name="tracking-stats"),
]
