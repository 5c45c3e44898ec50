from django.urls import path

from orders import api, errand_api

urlpatterns = [
    path("orders/", api.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/quote/", errand_api.QuoteApi.as_view(), name="order-quote"),
    path("orders/<str:number>/", api.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:number>/accept/", api.OrderAcceptApi.as_view(), name="order-accept"),
    path("orders/<str:number>/cost/", errand_api.OrderCostApi.as_view(), name="order-cost"),
    path(
        "orders/<str:number>/check-in/",
        errand_api.OrderCheckInApi.as_view(),
        name="order-check-in",
    ),
    path("orders/<str:number>/rating/", errand_api.OrderRatingApi.as_view(), name="order-rating"),
    path(
        "orders/<str:number>/customer-rating/",
        errand_api.OrderCustomerRatingApi.as_view(),
        name="order-customer-rating",
    ),
    path(
        "orders/<str:number>/complaint/",
        errand_api.OrderComplaintApi.as_view(),
        name="order-complaint",
    ),
    path("orders/<str:number>/pay/", api.OrderPayApi.as_view(), name="order-pay"),
    path("orders/<str:number>/cancel/", api.OrderCancelApi.as_view(), name="order-cancel"),
    path(
        "orders/<str:number>/transition/",
        api.OrderTransitionApi.as_view(),
        name="order-transition",
    ),
]
