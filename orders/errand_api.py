"""API of the errand kinds: the quote, the order input with the kind's details, the rider's own
steps (record the cost of a buy-for-me errand, check in at a queue) and the customer's rating.

orders/api.py uses OrderInputSerializer for order creation and the output helpers below; the
endpoints here follow the same rules: anonymous 401, a stranger's order 404, wrong method 405,
a bad payload 400 with field messages (a kind's details under "details").
"""

import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from campus.models import Building
from campus.selectors import building_remembered
from orders import pricing, rules, selectors, services
from orders.kinds import DETAIL_FIELDS, details_form, order_input_clean
from orders.models import (
    CustomerRating,
    CustomerRatingTag,
    Kind,
    Order,
    Rating,
    RatingTag,
    RequiredGender,
)
from orders.permissions import get_order_for_user
from orders.photos import PhotoRejected, photo_process
from riders.models import ComplaintCategory
from riders.selectors import order_complaint_get
from riders.services import COMPLAINT_WINDOW_DAYS, order_complaint_file


def nest_detail_errors(errors: dict) -> dict:
    """A kind's details fields go under "details", as they came in."""
    out: dict = {}
    for name, messages in errors.items():
        if name in DETAIL_FIELDS:
            out.setdefault("details", {})[name] = messages
        else:
            out[name] = messages
    return out


class DetailsField(serializers.JSONField):
    """The kind's details: a JSON object (or, in a multipart form, a JSON-encoded string)."""

    default_error_messages = {"invalid": gettext_lazy("Give the details as a JSON object.")}

    def to_internal_value(self, data):
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except ValueError:
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        return data


BUILDINGS = Building.objects.select_related("campus")


class BuildingField(serializers.PrimaryKeyRelatedField):
    """A building by id, remembered a few seconds (campus_errand/memo.py): every quote and order
    names two, and buildings change a few times a term."""

    def __init__(self, **kwargs):
        super().__init__(queryset=BUILDINGS, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            pk = int(data)
        except ValueError:
            self.fail("incorrect_type", data_type=type(data).__name__)
        building = building_remembered(pk)
        if building is None:
            self.fail("does_not_exist", pk_value=data)
        return building


class OrderInputSerializer(serializers.Serializer):
    """An order as the customer describes it; the quote takes the same input (less the photo)."""

    for_quote = False

    kind = serializers.ChoiceField(choices=Kind.choices)
    pickup_building = BuildingField()
    pickup_detail = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default=""
    )
    dropoff_building = BuildingField()
    dropoff_detail = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default=""
    )
    description = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default=""
    )
    required_gender = serializers.ChoiceField(
        choices=RequiredGender.choices, required=False, default=RequiredGender.ANY
    )
    # A plain file field: photos.photo_process gives the clear messages (not a PDF, too big...).
    photo = serializers.FileField(required=False, allow_empty_file=False)
    details = DetailsField(
        required=False,
        default=dict,
        help_text="The kind's fields: parcel {courier, pickup_code, size_class}; buy "
        "{budget_cap_fen, size_class}; document {confidential}; queue {start_at, "
        "duration_minutes}; custom {offered_price_fen}.",
    )
    urgent = serializers.BooleanField(required=False, default=False)
    deliver_by = serializers.DateTimeField(required=False, allow_null=True, default=None)
    tip_fen = serializers.IntegerField(required=False, min_value=0, default=0)
    quote_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        default="",
        help_text="From POST /api/orders/quote/: that price is honoured within its lifetime.",
    )

    def validate(self, data):
        kind, pickup = data["kind"], data["pickup_building"]
        form = details_form(kind, data.get("details") or {}, for_quote=self.for_quote)
        try:
            data["details"] = order_input_clean(
                campus=pickup.campus,
                kind=kind,
                pickup=pickup,
                dropoff=data["dropoff_building"],
                form=form,
                description=data.get("description", ""),
                photo=data.get("photo"),
                for_quote=self.for_quote,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(nest_detail_errors(exc.message_dict)) from None
        if data.get("photo") is not None:
            try:
                data["photo"] = photo_process(data["photo"], owner=self.context["request"].user)
            except PhotoRejected as exc:
                raise serializers.ValidationError({"photo": [str(exc.message)]}) from None
        return data


class QuoteInputSerializer(OrderInputSerializer):
    for_quote = True
    photo = None
    quote_id = None


class QuoteLineSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    amount_fen = serializers.IntegerField()


class QuoteOutputSerializer(serializers.Serializer):
    lines = QuoteLineSerializer(many=True)
    fee_fen = serializers.IntegerField(help_text="The errand fee: the lines down to the band.")
    total_fen = serializers.IntegerField(help_text="Fee + tip (+ the shopping budget).")
    quote_id = serializers.CharField(help_text="Send it with the order to get this price.")
    expires_at = serializers.DateTimeField()
    distance_m = serializers.IntegerField()
    estimated_minutes = serializers.IntegerField()
    promised_at = serializers.DateTimeField()
    opens_at = serializers.DateTimeField(allow_null=True)


def order_create_from_input(*, customer, data: dict) -> Order:
    """services.order_create with the pricing's field messages nested like the input."""
    try:
        return services.order_create(customer=customer, **data)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(nest_detail_errors(exc.message_dict)) from None


class QuoteApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request=QuoteInputSerializer,
        responses={200: QuoteOutputSerializer},
        description="The fee line by line before ordering, and a quote_id that holds it for a "
        "few minutes (see orders/pricing.py for the formula).",
    )
    def post(self, request):
        serializer = QuoteInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        quote_request = pricing.QuoteRequest.of(
            kind=data["kind"],
            pickup=data["pickup_building"],
            dropoff=data["dropoff_building"],
            details=data["details"],
            urgent=data["urgent"],
            deliver_by=data["deliver_by"],
            tip_fen=data["tip_fen"],
        )
        try:
            quote = pricing.quote_make(request=quote_request, customer=request.user)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(nest_detail_errors(exc.message_dict)) from None
        return Response(QuoteOutputSerializer(quote.as_dict()).data)


# --- what orders show of their kind ----------------------------------------------------------


def price_lines(order: Order) -> list[dict]:
    """The fee's lines as quoted, then the tip and the shopping: they add up to total_fen."""
    lines = pricing.lines_from_stored(order.price_lines or [])
    if not lines:
        lines = [pricing.Line("base", order.price_fen)]
    if order.tip_fen:
        lines.append(pricing.Line("tip", order.tip_fen))
    if order.actual_cost_fen is not None:
        lines.append(pricing.Line("actual_cost", order.actual_cost_fen))
    elif order.budget_cap_fen:
        lines.append(pricing.Line("budget_cap", order.budget_cap_fen))
    return [line.as_dict() for line in lines]


def order_details(order: Order, viewer) -> dict:
    """The kind's fields for this viewer: the pickup code and delivery code only for who may."""
    if order.kind == Kind.PARCEL:
        return {
            "courier": order.courier,
            "size_class": order.size_class,
            "pickup_code": order.pickup_code if rules.can_see_pickup_code(order, viewer) else None,
        }
    if order.kind == Kind.BUY:
        return {
            "budget_cap_fen": order.budget_cap_fen,
            "actual_cost_fen": order.actual_cost_fen,
            "has_receipt": bool(order.receipt_photo),
            "size_class": order.size_class,
        }
    if order.kind == Kind.DOCUMENT:
        return {
            "confidential": order.confidential,
            "needs_delivery_code": bool(order.delivery_code),
            "delivery_code": order.delivery_code
            if rules.can_see_delivery_code(order, viewer)
            else None,
        }
    if order.kind == Kind.QUEUE:
        return {
            "start_at": order.start_at,
            "duration_minutes": order.duration_minutes,
            "checked_in_at": order.checked_in_at,
        }
    if order.kind == Kind.CUSTOM:
        return {"offered_price_fen": order.price_fen}
    return {}


def _detail(order: Order, viewer) -> dict:
    from orders.api import OrderDetailOutputSerializer

    order = selectors.order_detail_qs().get(pk=order.pk)
    return OrderDetailOutputSerializer(order, context={"viewer": viewer}).data


# --- the rider's steps of a kind -------------------------------------------------------------


class OrderCostApi(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        actual_cost_fen = serializers.IntegerField(min_value=1)
        receipt_photo = serializers.FileField(allow_empty_file=False)

        def validate_receipt_photo(self, value):
            try:
                return photo_process(value, owner=self.context["request"].user)
            except PhotoRejected as exc:
                raise serializers.ValidationError(str(exc.message)) from None

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OpenApiResponse(description="The order, with the cost and the receipt."),
            403: OpenApiResponse(description="Not the rider carrying it."),
            409: OpenApiResponse(description="Not yet accepted, or already delivered."),
        },
        description="Buy for me: the rider records the actual cost (at most the budget cap) "
        "with a photo of the receipt (multipart).",
    )
    def post(self, request, number: str):
        order = get_order_for_user(request.user, number)
        serializer = self.InputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        order = services.order_record_cost(
            order=order,
            rider=request.user,
            actual_cost_fen=serializer.validated_data["actual_cost_fen"],
            receipt_photo=serializer.validated_data["receipt_photo"],
        )
        return Response(_detail(order, request.user))


class OrderCheckInApi(APIView):
    class InputSerializer(serializers.Serializer):
        lat = serializers.FloatField(min_value=-90, max_value=90)
        lng = serializers.FloatField(min_value=-180, max_value=180)
        accuracy = serializers.FloatField(min_value=0, required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OpenApiResponse(description="Checked in (position and time recorded)."),
            409: OpenApiResponse(description="Too far from the place, or too early."),
        },
        description="Queue / seat holding: the rider checks in at the place.",
    )
    def post(self, request, number: str):
        order = get_order_for_user(request.user, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order = services.order_check_in(
            order=order,
            rider=request.user,
            lat=data["lat"],
            lng=data["lng"],
            accuracy_m=data.get("accuracy"),
        )
        return Response(_detail(order, request.user))


class RatingSerializer(serializers.Serializer):
    stars = serializers.IntegerField(min_value=1, max_value=5)
    tags = serializers.ListField(
        child=serializers.ChoiceField(choices=RatingTag.choices),
        required=False,
        default=list,
        max_length=len(RatingTag.values),
    )
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RatingOutputSerializer(RatingSerializer):
    created_at = serializers.DateTimeField()


class _OrderFeedbackApi(APIView):
    """Feedback on an order, given once: GET the caller's (404 until there is one), POST it.
    A subclass names its serializers and how to find and give it (through the services)."""

    InputSerializer: type[serializers.Serializer]
    OutputSerializer: type[serializers.Serializer]
    not_found = gettext_lazy("Not rated yet.")

    def find(self, order: Order, user):
        raise NotImplementedError

    def give(self, order: Order, user, data: dict):
        raise NotImplementedError

    def get(self, request, number: str):
        order = get_order_for_user(request.user, number)
        found = self.find(order, request.user)
        if found is None:
            return Response({"detail": str(self.not_found)}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer(found).data)

    def post(self, request, number: str):
        order = get_order_for_user(request.user, number)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = self.give(order, request.user, serializer.validated_data)
        return Response(self.OutputSerializer(given).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses={200: RatingOutputSerializer, 404: OpenApiResponse()}),
    post=extend_schema(
        request=RatingSerializer,
        responses={
            201: RatingOutputSerializer,
            403: OpenApiResponse(description="Only the customer rates."),
            409: OpenApiResponse(description="Not delivered yet, or already rated."),
        },
        description="After delivery the customer rates the rider 1–5, once.",
    ),
)
class OrderRatingApi(_OrderFeedbackApi):
    """The customer rates the rider after delivery, once."""

    InputSerializer, OutputSerializer = RatingSerializer, RatingOutputSerializer

    def find(self, order, user):
        return Rating.objects.filter(order=order).first()

    def give(self, order, user, data):
        return services.order_rate(order=order, customer=user, **data)


class CustomerRatingSerializer(RatingSerializer):
    tags = serializers.ListField(
        child=serializers.ChoiceField(choices=CustomerRatingTag.choices),
        required=False,
        default=list,
        max_length=len(CustomerRatingTag.values),
    )


class CustomerRatingOutputSerializer(CustomerRatingSerializer):
    created_at = serializers.DateTimeField()


@extend_schema_view(
    get=extend_schema(responses={200: CustomerRatingOutputSerializer, 404: OpenApiResponse()}),
    post=extend_schema(
        request=CustomerRatingSerializer,
        responses={
            201: CustomerRatingOutputSerializer,
            403: OpenApiResponse(description="Only the order's rider rates the customer."),
            409: OpenApiResponse(description="Not delivered yet, or already rated."),
        },
        description="After delivery the rider rates the customer 1–5, once.",
    ),
)
class OrderCustomerRatingApi(_OrderFeedbackApi):
    """The rider rates the customer after delivery, once (the mirror of OrderRatingApi)."""

    InputSerializer, OutputSerializer = CustomerRatingSerializer, CustomerRatingOutputSerializer

    def find(self, order, user):
        if user.pk == order.customer_id:  # the customer never sees how their rider rated them
            return None
        return CustomerRating.objects.filter(order=order).first()

    def give(self, order, user, data):
        return services.order_rate_customer(order=order, rider=user, **data)


class ComplaintSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=ComplaintCategory.choices)
    reason = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        default="",
        help_text="What happened; required when the category is `other`.",
    )

    def validate(self, data):
        if data["category"] == ComplaintCategory.OTHER and not data["reason"].strip():
            raise serializers.ValidationError({"reason": _("Tell us what happened.")})
        return data


class ComplaintOutputSerializer(ComplaintSerializer):
    status = serializers.CharField(
        help_text="open (an operator is looking into it), upheld (it counts against the "
        "rider's credit score) or dismissed."
    )
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


@extend_schema_view(
    get=extend_schema(responses={200: ComplaintOutputSerializer, 404: OpenApiResponse()}),
    post=extend_schema(
        request=ComplaintSerializer,
        responses={
            201: ComplaintOutputSerializer,
            403: OpenApiResponse(description="Only the order's customer reports its rider."),
            409: OpenApiResponse(
                description="No rider yet, too long after delivery, or a report of this "
                "order is still open."
            ),
        },
        description="Once a rider has taken the order, and up to "
        f"{COMPLAINT_WINDOW_DAYS} days after delivery, the customer reports a problem with "
        "the rider; an operator upholds (the rider's credit score drops) or dismisses it. "
        "One open report per order.",
    ),
)
class OrderComplaintApi(_OrderFeedbackApi):
    """The customer reports a problem with the order's rider (the mirror of OrderRatingApi)."""

    InputSerializer, OutputSerializer = ComplaintSerializer, ComplaintOutputSerializer
    not_found = gettext_lazy("Not reported.")

    def find(self, order, user):
        return order_complaint_get(order, user)

    def give(self, order, user, data):
        return order_complaint_file(order=order, customer=user, **data)
