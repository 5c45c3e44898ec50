from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking import services, stats


class RiderLocationApi(APIView):
    """HTTP fallback of /ws/rider/: one fix from the rider's phone."""

    class InputSerializer(serializers.Serializer):
        lat = serializers.FloatField(min_value=-90, max_value=90)
        lng = serializers.FloatField(min_value=-180, max_value=180)
        accuracy = serializers.FloatField(required=False, allow_null=True, min_value=0)
        recorded_at = serializers.DateTimeField()

    class OutputSerializer(serializers.Serializer):
        lat = serializers.FloatField()
        lng = serializers.FloatField()
        recorded_at = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        position = services.location_record(rider=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer(position).data)


class TrackingStatsApi(APIView):
    """Operators: the live tracking pipeline's counters, every server process and the totals.

    `lost` counts pushes that never reached a watcher (by kind in `lost_by_kind`), `coalesced`
    the locations a watcher that was behind skipped for a newer one. See tracking.stats.
    """

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(stats.collect())
