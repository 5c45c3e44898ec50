from django.urls import path

from dispatch import views

app_name = "dispatch"
urlpatterns = [
    path("offers/<int:offer_id>/accept/", views.offer_accept, name="offer_accept"),
    path("offers/<int:offer_id>/decline/", views.offer_decline, name="offer_decline"),
    path("route/", views.route, name="route"),
    path("relays/<str:number>/", views.relay_page, name="relay"),
    path("relays/<str:number>/state/", views.relay_state, name="relay_state"),
    path("relays/<str:number>/arrive/", views.relay_arrive, name="relay_arrive"),
    path("relays/<str:number>/handoff/", views.relay_handoff, name="relay_handoff"),
]
