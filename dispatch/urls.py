from django.urls import path

from dispatch import views

app_name = "dispatch"
urlpatterns = [
    path("offers/<int:offer_id>/accept/", views.offer_accept, name="offer_accept"),
    path("offers/<int:offer_id>/decline/", views.offer_decline, name="offer_decline"),
    path("route/", views.route, name="route"),
]
