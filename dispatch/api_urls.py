from django.urls import path

from dispatch import api

urlpatterns = [
    path("dispatch/offers/", api.RiderOfferListApi.as_view(), name="dispatch-offers"),
    path(
        "dispatch/offers/<int:offer_id>/accept/",
        api.OfferAcceptApi.as_view(),
        name="dispatch-offer-accept",
    ),
    path(
        "dispatch/offers/<int:offer_id>/decline/",
        api.OfferDeclineApi.as_view(),
        name="dispatch-offer-decline",
    ),
    path("dispatch/route/", api.RiderRouteApi.as_view(), name="dispatch-route"),
    path(
        "dispatch/relays/<str:number>/handoff/",
        api.RelayHandoffApi.as_view(),
        name="dispatch-relay-handoff",
    ),
    path(
        "dispatch/relays/<str:number>/arrive/",
        api.RelayArriveApi.as_view(),
        name="dispatch-relay-arrive",
    ),
    path(
        "dispatch/riders/<int:user_id>/route/",
        api.OperatorRiderRouteApi.as_view(),
        name="dispatch-rider-route",
    ),
]
