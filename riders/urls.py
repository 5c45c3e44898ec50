from django.urls import path

from riders import views

app_name = "riders"
urlpatterns = [
    path("", views.board, name="board"),
    path("online/", views.set_online, name="online"),
    path("orders/<str:number>/accept/", views.accept, name="accept"),
    path("orders/<str:number>/advance/", views.advance, name="advance"),
]
