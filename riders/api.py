from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.api import OrderDetailOutputSerializer, OrderOutputSerializer
from orders.errors import NotAllowed
from orders.selectors import order_detail_qs
from riders import selectors, services
from riders.permissions import is_rider


def _require_rider(user) -> None:
    if not is_rider(user):
        raise NotAllowed()


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
    """Open orders the calling rider may take, best grab score first (distance to the pickup,
    fee, deadline), oldest first among equals."""

    @extend_schema(responses=OrderOutputSerializer(many=True))
    def get(self, request):
        _require_rider(request.user)
        if not request.user.rider_profile.online:
            return Response([])
        orders = selectors.rider_board(request.user)[:50]
        return Response(OrderOutputSerializer(orders, many=True).data)


class RiderScanApi(APIView):
    """A scanned order QR: accept the order if it is open, confirm pickup if it is yours."""

    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=500)

    class OutputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["accepted", "picked_up", "none"])
        order = OrderDetailOutputSerializer()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            403: OpenApiResponse(description="This rider may not take this order."),
            404: OpenApiResponse(description="No order matches the code."),
            409: OpenApiResponse(description="Another rider took it first."),
        },
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.rider_scan_order(
            user=request.user, code=serializer.validated_data["code"]
        )
        order = order_detail_qs().get(pk=result.order.pk)
        return Response(self.OutputSerializer({"action": result.action, "order": order}).data)


class RiderCreditApi(APIView):
    class OutputSerializer(serializers.Serializer):
        score = serializers.IntegerField()
        level = serializers.CharField()
        on_time_rate = serializers.FloatField()
        reliability = serializers.FloatField()
        average_stars = serializers.FloatField()
        tips = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        _require_rider(request.user)
        report = services.rider_credit_recompute(user=request.user)
        return Response(self.OutputSerializer(report).data)


class RiderEarningsApi(APIView):
    """The rider's latest shifts and the last seven days, each with what was earned (fen).

    `earned_fen` is what the payments ledger credited to the rider (dated by the delivery it
    pays for); `pending_fen` is delivered but not yet settled (fee plus tip, before commission).
    """

    class ShiftSerializer(serializers.Serializer):
        started_at = serializers.DateTimeField(source="shift.started_at")
        ended_at = serializers.DateTimeField(source="shift.ended_at", allow_null=True)
        end_reason = serializers.CharField(
            source="shift.end_reason",
            help_text="Why it ended: rider, idle (switched offline automatically), operator, "
            "reopened; empty while open.",
        )
        earned_fen = serializers.IntegerField(source="takings.earned_fen")
        pending_fen = serializers.IntegerField(source="takings.pending_fen")
        deliveries = serializers.IntegerField(source="takings.deliveries")

    class DaySerializer(serializers.Serializer):
        day = serializers.DateField()
        earned_fen = serializers.IntegerField(source="takings.earned_fen")
        pending_fen = serializers.IntegerField(source="takings.pending_fen")
        deliveries = serializers.IntegerField(source="takings.deliveries")
        online_seconds = serializers.SerializerMethodField()

        def get_online_seconds(self, row) -> int:
            return int(row.online.total_seconds())

    class OutputSerializer(serializers.Serializer):
        shifts = serializers.ListField(child=serializers.DictField())
        days = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        _require_rider(request.user)
        return Response(
            {
                "shifts": self.ShiftSerializer(
                    selectors.rider_shift_list(request.user), many=True
                ).data,
                "days": self.DaySerializer(
                    selectors.rider_daily_earnings(request.user), many=True
                ).data,
            }
        )
