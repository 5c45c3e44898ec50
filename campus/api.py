from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from campus import selectors
from campus.models import BuildingKind, GenderRule


class BuildingListApi(APIView):
    """The campus buildings people order from and to (public: it is the campus map)."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField(source="display_name")
        kind = serializers.ChoiceField(choices=BuildingKind.choices)
        gender_rule = serializers.ChoiceField(choices=GenderRule.choices)
        lat = serializers.FloatField()
        lng = serializers.FloatField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        campus = selectors.campus_default()
        buildings = selectors.building_list(campus=campus) if campus else []
        return Response(self.OutputSerializer(buildings, many=True).data)


class CampusMapApi(APIView):
    """GeoJSON of buildings, transfer stations and paths: the offline base map."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        campus = selectors.campus_default()
        if campus is None:
            return Response({"type": "FeatureCollection", "features": []})
        return Response(selectors.campus_map_geojson(campus))
