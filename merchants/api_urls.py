from django.urls import path

from merchants import api

urlpatterns = [
    path("takeout/merchants/", api.MerchantListApi.as_view(), name="takeout-merchants"),
    path("takeout/merchants/<slug:slug>/menu/", api.MenuApi.as_view(), name="takeout-menu"),
    path("takeout/merchants/<slug:slug>/price/", api.PriceApi.as_view(), name="takeout-price"),
    path(
        "takeout/merchants/<slug:slug>/orders/", api.PlaceOrderApi.as_view(), name="takeout-order"
    ),
    path("merchant/<slug:slug>/tickets/", api.InboxApi.as_view(), name="merchant-tickets"),
    path(
        "merchant/<slug:slug>/tickets/<str:number>/<str:action>/",
        api.TicketStepApi.as_view(),
        name="merchant-ticket-step",
    ),
]
