from django.urls import path

from riders import api

urlpatterns = [
    path("rider/online/", api.RiderOnlineApi.as_view(), name="rider-online"),
    path("rider/board/", api.RiderBoardApi.as_view(), name="rider-board"),
    path("rider/scan/", api.RiderScanApi.as_view(), name="rider-scan"),
    path("rider/credit/", api.RiderCreditApi.as_view(), name="rider-credit"),
    path("rider/earnings/", api.RiderEarningsApi.as_view(), name="rider-earnings"),
]
