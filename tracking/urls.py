from django.urls import path

from tracking import views

app_name = "tracking"
urlpatterns = [
    path("ops/map/", views.ops_map, name="ops_map"),
    path("ops/orders/<str:number>/replay/", views.order_replay, name="replay"),
    path("orders/<str:number>/chat/", views.chat_post, name="chat"),
    path("orders/<str:number>/proof/", views.proof_step, name="proof_step"),
    path("orders/<str:number>/proofs/<int:pk>/photo/", views.proof_photo, name="proof_photo"),
    path(
        "orders/<str:number>/proofs/<int:pk>/thumb/",
        views.proof_photo,
        {"thumb": True},
        name="proof_thumb",
    ),
]
