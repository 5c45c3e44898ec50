"""Takeout API: browse, menus, price and place an order (students); the merchant's inbox and
ticket steps (merchant staff). Thin: a serializer in, one service, a serializer out."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from campus.models import Building
from campus.selectors import campus_default
from merchants import pricing, selectors, services
from merchants.models import CouponClaim, MenuItem, MerchantStatus
from merchants.permissions import get_merchant_for_staff, get_ticket_for_staff
from payments.api import IDEMPOTENCY_PARAMETER
from payments.idempotency import idempotent


class MerchantSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField(source="merchant.display_name")
    kind = serializers.CharField(source="merchant.kind")
    building = serializers.CharField(source="merchant.building.code")
    lat = serializers.FloatField(source="merchant.lat")
    lng = serializers.FloatField(source="merchant.lng")
    is_open = serializers.BooleanField(source="state.is_open")
    closes_at = serializers.DateTimeField(source="state.closes_at", allow_null=True)
    opens_at = serializers.DateTimeField(source="state.opens_at", allow_null=True)
    closing_soon = serializers.BooleanField()
    prep_minutes = serializers.IntegerField(source="merchant.current_prep_minutes")


class MerchantListApi(APIView):
    """Merchants on the campus, open ones first. `?q=` searches names and dishes."""

    permission_classes = [AllowAny]

    @extend_schema(responses=MerchantSerializer(many=True))
    def get(self, request):
        campus = campus_default()
        cards = (
            selectors.merchant_browse(campus=campus, q=request.query_params.get("q", "")[:40])
            if campus
            else []
        )
        data = [
            {"slug": c.merchant.slug, "merchant": c.merchant, "state": c.state,
             "closing_soon": c.closing_soon}
            for c in cards
        ]  # fmt: skip
        return Response(MerchantSerializer(data, many=True).data)


class OptionOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price_delta_fen = serializers.IntegerField()
    available = serializers.BooleanField()


class OptionGroupOut(serializers.Serializer):
    name = serializers.CharField()
    required = serializers.BooleanField()
    multiple = serializers.BooleanField()
    max_choices = serializers.IntegerField(allow_null=True)
    options = OptionOut(many=True, source="options.all")


class ItemOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField(source="category.name", default="")
    price_fen = serializers.IntegerField()
    packaging_fen = serializers.IntegerField()
    stock = serializers.IntegerField(allow_null=True)
    sold_out = serializers.BooleanField(source="unavailable")
    available_now = serializers.BooleanField()
    periods = serializers.ListField(child=serializers.CharField())
    option_groups = OptionGroupOut(many=True, source="option_groups.all")


class MenuApi(APIView):
    """A merchant's menu: every item with its options, sold-out ones included (greyed out)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=ItemOut(many=True))
    def get(self, request, slug: str):
        merchant = get_object_or_404(selectors.merchant_qs(), slug=slug, active=True)
        items = [item for section in selectors.menu_for(merchant) for item in section["items"]]
        return Response(ItemOut(items, many=True).data)


class LineIn(serializers.Serializer):
    item = serializers.IntegerField()
    quantity = serializers.IntegerField(min_value=1, max_value=99, default=1)
    options = serializers.ListField(child=serializers.IntegerField(), default=list)


class OrderIn(serializers.Serializer):
    lines = LineIn(many=True, allow_empty=False)
    dropoff_building = serializers.PrimaryKeyRelatedField(queryset=Building.objects.all())
    dropoff_detail = serializers.CharField(max_length=120, required=False, default="")
    deliver_by = serializers.DateTimeField(required=False, allow_null=True, default=None)
    coupon = serializers.CharField(
        required=False,
        default="auto",
        help_text='"auto" (the best for the order), "none", or the id of a claimed coupon.',
    )
    note = serializers.CharField(max_length=140, required=False, default="", allow_blank=True)
    expect_total_fen = serializers.IntegerField(required=False, allow_null=True, default=None)


def _lines(merchant, data) -> list:
    items = {
        i.pk: i
        for i in MenuItem.objects.filter(merchant=merchant, pk__in=[x["item"] for x in data])
    }
    missing = [x["item"] for x in data if x["item"] not in items]
    if missing:
        raise serializers.ValidationError({"lines": [f"No item {missing[0]} on this menu."]})
    return [(items[x["item"]], x["quantity"], x["options"]) for x in data]


def _coupon(user, value: str) -> dict:
    if value in ("auto", "", None):
        return {"use_best_coupon": True}
    if value == "none":
        return {}
    claim = CouponClaim.objects.filter(user=user, pk=value if str(value).isdigit() else 0).first()
    if claim is None:
        raise serializers.ValidationError({"coupon": ["No such coupon of yours."]})
    return {"coupon_claim": claim}


class PriceOut(serializers.Serializer):
    lines = serializers.ListField(child=serializers.DictField())
    items_fen = serializers.IntegerField()
    packaging_fen = serializers.IntegerField()
    delivery_fen = serializers.IntegerField()
    discount_fen = serializers.IntegerField()
    total_fen = serializers.IntegerField()
    coupon_id = serializers.IntegerField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())


class PriceApi(APIView):
    """What the order would cost now, line by line (nothing is ordered or held)."""

    @extend_schema(request=OrderIn, responses=PriceOut)
    def post(self, request, slug: str):
        merchant = get_object_or_404(selectors.merchant_qs(), slug=slug, active=True)
        serializer = OrderIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        inputs = []
        for item, quantity, option_ids in _lines(merchant, data["lines"]):
            try:
                options = pricing.options_choose(
                    selectors.group_rules(
                        MenuItem.objects.prefetch_related("option_groups__options").get(pk=item.pk)
                    ),
                    option_ids,
                )
            except pricing.PriceError as exc:
                raise serializers.ValidationError({"lines": [str(exc.message)]}) from None
            inputs.append(
                pricing.LineInput(item.name, item.price_fen, item.packaging_fen, quantity, options)
            )
        quote = services.takeout_quote(
            merchant=merchant,
            dropoff=data["dropoff_building"],
            customer=request.user,
            deliver_by=data["deliver_by"],
            signed=False,
        )
        new_user = selectors.is_new_customer(request.user)
        settings = selectors.takeout_settings_for(merchant.campus)
        claims = selectors.coupon_claims_usable(request.user, merchant, new_user=new_user)
        coupon = _coupon(request.user, data["coupon"])
        kwargs = {
            "lines": inputs,
            "delivery_fen": quote.fee_fen,
            "tiers": selectors.tier_rules(merchant),
            "new_user_fen": settings.new_user_discount_fen if new_user else 0,
        }
        if coupon.get("use_best_coupon"):
            breakdown = pricing.price_best(
                coupons=[selectors.coupon_rule(c) for c in claims], **kwargs
            )
        elif coupon.get("coupon_claim"):
            breakdown = pricing.price_order(
                coupon=selectors.coupon_rule(coupon["coupon_claim"]), **kwargs
            )
        else:
            breakdown = pricing.price_order(**kwargs)
        return Response(PriceOut(breakdown.as_dict()).data)


class TakeoutOut(serializers.Serializer):
    number = serializers.CharField(source="order.number")
    status = serializers.CharField(source="order.status")
    ticket_no = serializers.IntegerField()
    merchant_status = serializers.CharField()
    total_fen = serializers.IntegerField(source="due_fen")
    price_lines = serializers.ListField(child=serializers.DictField())
    expected_ready_at = serializers.DateTimeField()
    promised_at = serializers.DateTimeField(source="order.promised_at")


class PlaceOrderApi(APIView):
    """Order these lines now, paid from the wallet (402 when it is short, 409 when an item has
    just sold out or the merchant closed). Honours `Idempotency-Key`."""

    @extend_schema(
        request=OrderIn,
        responses={201: TakeoutOut, 402: OpenApiResponse(description="Wallet too low.")},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request, slug: str):
        merchant = get_object_or_404(selectors.merchant_qs(), slug=slug, active=True)
        serializer = OrderIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lines = _lines(merchant, data["lines"])
        coupon = _coupon(request.user, data["coupon"])

        def place():
            order = services.takeout_place(
                customer=request.user,
                merchant=merchant,
                lines=lines,
                dropoff_building=data["dropoff_building"],
                dropoff_detail=data["dropoff_detail"],
                deliver_by=data["deliver_by"],
                note=data["note"],
                expect_total_fen=data["expect_total_fen"],
                **coupon,
            )
            ticket = selectors.ticket_for_order(order)
            ticket.order = order
            return Response(TakeoutOut(ticket).data, status=201)

        return idempotent(self, request, place)


class TicketOut(serializers.Serializer):
    number = serializers.CharField(source="order.number")
    ticket_no = serializers.IntegerField()
    merchant_status = serializers.CharField()
    order_status = serializers.CharField(source="order.status")
    source = serializers.CharField()
    note = serializers.CharField()
    lines = serializers.SerializerMethodField()
    dropoff = serializers.CharField(source="order.dropoff_building.display_name")
    deliver_by = serializers.DateTimeField(source="order.deliver_by", allow_null=True)
    expected_ready_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()

    def get_lines(self, ticket) -> list[dict]:
        return [
            {"name": x.name, "quantity": x.quantity, "options": x.options_text}
            for x in ticket.lines.all()
        ]


class InboxApi(APIView):
    """The merchant's tickets by column: new, kitchen, ready, done (staff of the merchant)."""

    @extend_schema(responses=TicketOut(many=True))
    def get(self, request, slug: str):
        merchant = get_merchant_for_staff(request.user, slug)
        columns = selectors.inbox_tickets(merchant, now=timezone.now())
        return Response({k: TicketOut(v, many=True).data for k, v in columns.items()})


class TicketStepApi(APIView):
    """accept, preparing, ready, reject (with `reason`: the order is refunded in full)."""

    STEPS = {
        "accept": MerchantStatus.ACCEPTED,
        "preparing": MerchantStatus.PREPARING,
        "ready": MerchantStatus.READY,
        "reject": MerchantStatus.REJECTED,
    }

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    @extend_schema(request=InputSerializer, responses=TicketOut)
    def post(self, request, slug: str, number: str, action: str):
        merchant = get_merchant_for_staff(request.user, slug)
        ticket = get_ticket_for_staff(merchant, number)
        if action not in self.STEPS:
            return Response({"detail": _("Unknown step."), "code": "unknown_step"}, status=404)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.ticket_advance(
            ticket=ticket,
            to=self.STEPS[action],
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        ticket = get_ticket_for_staff(merchant, number)
        return Response(TicketOut(ticket).data)
