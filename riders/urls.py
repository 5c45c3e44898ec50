from django.urls import path

from riders import views

app_name = "riders"
urlpatterns = [
    path("", views.board, name="board"),
    path("board/fragment/", views.board_fragment, name="board_fragment"),
    path("apply/", views.apply, name="apply"),
    path("online/", views.set_online, name="online"),
    path("credit/", views.credit, name="credit"),
    path("earnings/", views.earnings, name="earnings"),
    path("scan/", views.scan, name="scan"),
    path("scan/<str:number>/", views.scan_order, name="scan_order"),
    path("orders/<str:number>/accept/", views.accept, name="accept"),
    path("orders/<str:number>/advance/", views.advance, name="advance"),
    path("cards/<int:pk>/", views.student_card, name="student_card"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("offline/", views.offline, name="offline"),
]
