from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.api import OrderOutputSerializer
from orders.errors import NotAllowed
from riders import selectors, services
from riders.permissions import is_rider


class RiderOnlineApi(APIView):
    class InputSerializer(serializers.Serializer):
        online = serializers.BooleanField()

    class OutputSerializer(serializers.Serializer):
        online = serializers.BooleanField()
        verified = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = services.rider_set_online(
            user=request.user, online=serializer.validated_data["online"]
        )
        return Response(self.OutputSerializer(profile).data)


class RiderBoardApi(APIView):
    """Open orders the calling rider may take, oldest first."""

    @extend_schema(responses=OrderOutputSerializer(many=True))
    def get(self, request):
        if not is_rider(request.user):
            raise NotAllowed()
        if not request.user.rider_profile.online:
            return Response([])
        orders = selectors.rider_board(request.user)[:50]
        return Response(OrderOutputSerializer(orders, many=True).data)
