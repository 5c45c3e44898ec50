from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.permissions import get_order_for_user
from tracking import chat, selectors, services, stats
from tracking.snapshot import order_snapshot


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


# --- the order page: snapshot (polling fallback), chat -------------------------------------------


class OrderSnapshotApi(APIView):
    """The order as its socket's first message shows it (status, timeline, the rider's position
    when this viewer may see it, the path ahead, the ETA, the chat). Order pages poll it when
    WebSockets are blocked. 404 for anyone who may not see the order."""

    @extend_schema(responses={200: dict})
    def get(self, request, number: str):
        order = get_order_for_user(request.user, number)
        response = Response(order_snapshot(order, request.user))
        response["Cache-Control"] = "no-store"
        return response


class OrderChatApi(APIView):
    """GET: the order's chat as this viewer sees it. POST: send a message ({"body"}) or a quick
    reply ({"quick": code}); the customer and the rider only, while the chat is open."""

    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(required=False, allow_blank=True, max_length=2000)
        quick = serializers.CharField(required=False, allow_blank=True, max_length=24)

    @extend_schema(responses={200: dict})
    def get(self, request, number: str):
        order = get_order_for_user(request.user, number)
        state = chat.chat_state(order, request.user)
        if state is None:
            raise Http404(_("No such order"))
        return Response(state.payload())

    @extend_schema(request=InputSerializer, responses={201: dict})
    def post(self, request, number: str):
        order = get_order_for_user(request.user, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = chat.chat_post(order=order, sender=request.user, **serializer.validated_data)
        return Response(chat.message_payload(message), status=201)


# --- the operators' live map ------------------------------------------------------------------


class OpsMapApi(APIView):
    """Operators: every online rider and every active order, for the live map's first draw (and
    its periodic refresh); changes then arrive over /ws/ops/."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        response = Response(selectors.ops_map_state())
        response["Cache-Control"] = "no-store"
        return response


class OpsRiderRouteApi(APIView):
    """Operators: a rider's current stops and path (dispatch's plan when there is one)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request, rider_id: int):
        from riders.models import RiderProfile

        profile = (
            RiderProfile.objects.select_related("user", "campus").filter(user_id=rider_id).first()
        )
        if profile is None:
            raise Http404(_("No such rider"))
        return Response(selectors.ops_rider_route(profile.user))
