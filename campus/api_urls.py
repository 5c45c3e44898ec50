from django.urls import path

from campus import api

urlpatterns = [
    path("campus/buildings/", api.BuildingListApi.as_view(), name="building-list"),
    path("campus/map/", api.CampusMapApi.as_view(), name="campus-map"),
]
