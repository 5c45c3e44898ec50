from django.urls import path

from riders import api

urlpatterns = [
    path("rider/online/", api.RiderOnlineApi.as_view(), name="rider-online"),
    path("rider/board/", api.RiderBoardApi.as_view(), name="rider-board"),
]
