from django.urls import path

from orders import api

urlpatterns = [
    path("orders/", api.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/<str:number>/", api.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:number>/accept/", api.OrderAcceptApi.as_view(), name="order-accept"),
    path(
        "orders/<str:number>/transition/",
        api.OrderTransitionApi.as_view(),
        name="order-transition",
    ),
]
