"""Rider app API for dispatch: pending offers (accept / decline) and the planned route."""

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import selectors, services
from orders.api import OrderDetailOutputSerializer
from orders.errors import NotAllowed
from orders.selectors import order_detail_qs
from riders.models import RiderProfile
from riders.permissions import is_rider


def _rider(request):
    if not is_rider(request.user):
        raise NotAllowed()
    return request.user


class PlaceSerializer(serializers.Serializer):
    name = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()


class OfferOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(source="order.number")
    status = serializers.CharField()
    pickup = serializers.SerializerMethodField()
    dropoff = serializers.SerializerMethodField()
    fee_fen = serializers.IntegerField(source="order.price_fen")
    expires_at = serializers.DateTimeField()
    seconds_left = serializers.IntegerField()
    pickup_distance_m = serializers.SerializerMethodField()

    @staticmethod
    def _place(building) -> dict:
        return {"name": building.display_name, "lat": building.lat, "lng": building.lng}

    def get_pickup(self, offer) -> PlaceSerializer:
        return self._place(offer.order.pickup_building)

    def get_dropoff(self, offer) -> PlaceSerializer:
        return self._place(offer.order.dropoff_building)

    def get_pickup_distance_m(self, offer) -> float | None:
        return (offer.terms or {}).get("pickup_distance_m")


class RiderOfferListApi(APIView):
    """Offers waiting for the calling rider's answer, soonest deadline first."""

    @extend_schema(responses=OfferOutputSerializer(many=True))
    def get(self, request):
        offers = selectors.rider_offers(_rider(request))
        return Response(OfferOutputSerializer(offers, many=True).data)


def _offer(request, offer_id: int):
    offer = selectors.offer_for_rider(_rider(request), offer_id)
    if offer is None:
        raise Http404(_("No such offer"))
    return offer


class OfferAcceptApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: OrderDetailOutputSerializer,
            409: OpenApiResponse(description="The offer expired or was answered already."),
        },
    )
    def post(self, request, offer_id: int):
        order = services.offer_accept(offer=_offer(request, offer_id), rider=request.user)
        return Response(OrderDetailOutputSerializer(order_detail_qs().get(pk=order.pk)).data)


class OfferDeclineApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=200, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, offer_id: int):
        offer = _offer(request, offer_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer = services.offer_decline(
            offer=offer, rider=request.user, reason=serializer.validated_data.get("reason", "")
        )
        return Response(self.OutputSerializer(offer).data)


class StopSerializer(serializers.Serializer):
    number = serializers.CharField(source="order.number")
    kind = serializers.CharField()
    building = serializers.CharField(source="building.display_name")
    lat = serializers.FloatField(source="building.lat")
    lng = serializers.FloatField(source="building.lng")
    eta = serializers.DateTimeField()
    due = serializers.DateTimeField(allow_null=True)
    late = serializers.BooleanField()


class RouteOutputSerializer(serializers.Serializer):
    stops = StopSerializer(many=True)
    path = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    distance_m = serializers.FloatField()
    planned_at = serializers.DateTimeField()
    method = serializers.CharField()
    from_live_position = serializers.BooleanField()


class RiderRouteApi(APIView):
    """The calling rider's stops in the planned order and the path through them ([lng, lat]),
    re-planned from their live position on every read."""

    @extend_schema(responses=RouteOutputSerializer)
    def get(self, request):
        route = selectors.rider_route(_rider(request))
        return Response(RouteOutputSerializer(route).data)


class OperatorRiderRouteApi(APIView):
    """An operator's view of any rider's planned route."""

    @extend_schema(responses=RouteOutputSerializer)
    def get(self, request, user_id: int):
        if not request.user.is_staff:
            raise NotAllowed()
        profile = RiderProfile.objects.select_related("user").filter(user_id=user_id).first()
        if profile is None:
            raise Http404(_("No such rider"))
        return Response(RouteOutputSerializer(selectors.rider_route(profile.user)).data)


# --- transfer-station relays (dispatch.relay) ----------------------------------------------------


def _relay_order(request, number: str):
    from dispatch import relay

    rider = _rider(request)
    order = order_detail_qs().filter(number=number).first()
    if order is None or relay.handoff_code_for(order, rider) is None:
        raise Http404(_("No such relay"))
    return order, rider


class RelayHandoffApi(APIView):
    """The hand-over at the station: GET shows the calling rider's code (the other rider enters
    it); POST enters the other rider's code. When both are in, leg 2's rider carries it on."""

    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=8)

    class OutputSerializer(serializers.Serializer):
        number = serializers.CharField()
        leg = serializers.IntegerField()
        station = serializers.CharField()
        code = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request, number: str):
        from dispatch import relay

        order, rider = _relay_order(request, number)
        leg = relay.relay_leg_for(order, rider)
        data = {
            "number": order.number,
            "leg": leg.number,
            "station": str(leg.station),
            "code": leg.handoff_code,
            "status": order.status,
        }
        return Response(self.OutputSerializer(data).data)

    @extend_schema(request=InputSerializer, responses=OrderDetailOutputSerializer)
    def post(self, request, number: str):
        from dispatch import relay

        order, rider = _relay_order(request, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        relay.handoff_confirm(order=order, rider=rider, code=serializer.validated_data["code"])
        return Response(OrderDetailOutputSerializer(order_detail_qs().get(pk=order.pk)).data)


class RelayArriveApi(APIView):
    """Leg 1's rider is at the transfer station with the item."""

    @extend_schema(request=None, responses=OrderDetailOutputSerializer)
    def post(self, request, number: str):
        from dispatch import relay

        order, rider = _relay_order(request, number)
        relay.relay_arrive(order=order, rider=rider)
        return Response(OrderDetailOutputSerializer(order_detail_qs().get(pk=order.pk)).data)
