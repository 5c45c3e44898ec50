from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from campus.models import Building
from orders import errand_api, selectors, services
from orders.models import Kind, Order, RequiredGender
from orders.permissions import get_order_for_rider, get_order_for_user
from orders.status import Status, status_meta
from payments.api import IDEMPOTENCY_PARAMETER, order_money_data
from payments.errors import PaymentError
from payments.forms import CANCEL_REASONS, cancel_note
from payments.idempotency import idempotent
from payments.services import DISPUTABLE, order_amount_due, yuan


class PlaceSerializer(serializers.Serializer):
    building = serializers.IntegerField()
    name = serializers.CharField()
    detail = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()


class EventSerializer(serializers.Serializer):
    status = serializers.CharField(source="new_status")
    old_status = serializers.CharField()
    note = serializers.CharField()
    at = serializers.DateTimeField(source="created_at")


class OrderOutputSerializer(serializers.Serializer):
    number = serializers.CharField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    status_label = serializers.SerializerMethodField()
    pickup = serializers.SerializerMethodField()
    dropoff = serializers.SerializerMethodField()
    description = serializers.CharField()
    required_gender = serializers.ChoiceField(choices=RequiredGender.choices)
    price_fen = serializers.IntegerField()
    rider = serializers.SerializerMethodField()
    has_photo = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    # Pricing, time and the kind's details (orders/kinds.py); secrets only for who may see them.
    tip_fen = serializers.IntegerField()
    total_fen = serializers.IntegerField()
    price_lines = serializers.SerializerMethodField()
    distance_m = serializers.IntegerField(allow_null=True)
    urgent = serializers.BooleanField()
    size_class = serializers.CharField()
    deliver_by = serializers.DateTimeField(allow_null=True)
    opens_at = serializers.DateTimeField(allow_null=True)
    promised_at = serializers.DateTimeField(allow_null=True)
    details = serializers.SerializerMethodField()

    def get_price_lines(self, order: Order) -> list[dict]:
        return errand_api.price_lines(order)

    def get_details(self, order: Order) -> dict:
        return errand_api.order_details(order, self.context.get("viewer"))

    def get_status_label(self, order: Order) -> str:
        return status_meta(order.status)["label"]

    @staticmethod
    def _place(building: Building, detail: str) -> dict:
        return {
            "building": building.pk,
            "name": building.display_name,
            "detail": detail,
            "lat": building.lat,
            "lng": building.lng,
        }

    def get_pickup(self, order: Order) -> dict:
        return self._place(order.pickup_building, order.pickup_detail)

    def get_dropoff(self, order: Order) -> dict:
        return self._place(order.dropoff_building, order.dropoff_detail)

    def get_rider(self, order: Order) -> dict | None:
        return {"name": order.rider.public_name} if order.rider_id else None

    def get_has_photo(self, order: Order) -> bool:
        return bool(order.photo)


class OrderDetailOutputSerializer(OrderOutputSerializer):
    events = EventSerializer(many=True)


class OrderListCreateApi(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    # Common fields, `details` checked by the kind's form (orders/kinds.py), an optional
    # `quote_id` from POST /api/orders/quote/ (honoured within its lifetime, 409 after).
    InputSerializer = errand_api.OrderInputSerializer

    @extend_schema(
        parameters=[],
        responses=OrderOutputSerializer(many=True),
        description="Orders the caller placed, newest first; `?role=rider` for those they carry.",
    )
    def get(self, request):
        if request.query_params.get("role") == "rider":
            orders = selectors.order_list_for_rider(request.user)
        else:
            orders = selectors.order_list_for_customer(request.user)
        return Response(OrderOutputSerializer(orders[:100], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OrderDetailOutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        order = errand_api.order_create_from_input(
            customer=request.user, data=serializer.validated_data
        )
        order = selectors.order_detail_of_new(order)
        return Response(
            OrderDetailOutputSerializer(order, context={"viewer": request.user}).data,
            status=status.HTTP_201_CREATED,
        )


class OrderDetailApi(APIView):
    @extend_schema(responses=OrderDetailOutputSerializer)
    def get(self, request, number: str):
        order = get_order_for_user(request.user, number)
        return Response(OrderDetailOutputSerializer(order, context={"viewer": request.user}).data)


class OrderAcceptApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: OrderDetailOutputSerializer,
            409: OpenApiResponse(description="Another rider took it first."),
        },
    )
    def post(self, request, number: str):
        order = get_order_for_rider(request.user, number)
        order = services.order_accept(order=order, rider=request.user)
        return Response(
            OrderDetailOutputSerializer(selectors.order_detail_qs().get(pk=order.pk)).data
        )


class OrderTransitionApi(APIView):
    class InputSerializer(serializers.Serializer):
        to = serializers.ChoiceField(choices=Status.choices)
        note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
        # The customer's delivery code, when the order has one (confidential documents).
        code = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OrderDetailOutputSerializer,
            409: OpenApiResponse(description="Not allowed from the current status."),
        },
    )
    def post(self, request, number: str):
        order = get_order_for_rider(request.user, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = services.order_transition(
            order=order,
            to=serializer.validated_data["to"],
            actor=request.user,
            note=serializer.validated_data["note"],
            code=serializer.validated_data["code"],
        )
        return Response(
            OrderDetailOutputSerializer(selectors.order_detail_qs().get(pk=order.pk)).data
        )


# --- money: paying and cancelling (the ledger is payments/; these only call its services) ------


def _order_with_money(order: Order) -> dict:
    order = selectors.order_detail_qs().get(pk=order.pk)
    return {**OrderDetailOutputSerializer(order).data, "money": order_money_data(order)}


class OrderPayApi(APIView):
    class InputSerializer(serializers.Serializer):
        amount_fen = serializers.IntegerField(
            required=False,
            min_value=0,
            help_text="The amount the customer was shown; refused (409) if the order costs more.",
        )

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: OpenApiResponse(description="Paid from the wallet; the order is open."),
            402: OpenApiResponse(description="The wallet balance is too low: top up first."),
            409: OpenApiResponse(description="Already paid (or no longer pending)."),
        },
    )
    def post(self, request, number: str):
        order = get_order_for_user(request.user, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shown = serializer.validated_data.get("amount_fen")

        def pay():
            if shown is not None and shown != order_amount_due(order):
                raise PaymentError(
                    _("This order costs %(due)s, not %(shown)s: check it and pay again.")
                    % {"due": yuan(order_amount_due(order)), "shown": yuan(shown)}
                )
            paid = services.order_pay(order=order, payer=request.user)
            return Response(_order_with_money(paid))

        return idempotent(self, request, pay)


class OrderCancelApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.ChoiceField(choices=CANCEL_REASONS)
        detail = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: OpenApiResponse(
                description="Cancelled; `money.refunded_fen` went back to the wallet "
                "(before acceptance all of it, after acceptance minus the rider's compensation)."
            ),
            409: OpenApiResponse(description="After pickup: open a dispute instead."),
        },
    )
    def post(self, request, number: str):
        order = get_order_for_user(request.user, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        note = cancel_note(data["reason"], data.get("detail", ""))

        def cancel():
            if order.status in DISPUTABLE:
                raise PaymentError(_("After pickup an order cannot be cancelled: open a dispute."))
            cancelled = services.order_transition(
                order=order, to=Status.CANCELLED, actor=request.user, note=note
            )
            return Response(_order_with_money(cancelled))

        return idempotent(self, request, cancel)
