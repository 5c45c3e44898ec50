from django.urls import path

from orders import api

urlpatterns = [
    path("orders/", api.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/<str:number>/", api.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:number>/accept/", api.OrderAcceptApi.as_view(), name="order-accept"),
    path("orders/<str:number>/pay/", api.OrderPayApi.as_view(), name="order-pay"),
    path("orders/<str:number>/cancel/", api.OrderCancelApi.as_view(), name="order-cancel"),
    path(
        "orders/<str:number>/transition/",
        api.OrderTransitionApi.as_view(),
        name="order-transition",
    ),
]
