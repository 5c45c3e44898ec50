"""Money API: wallet, top-ups, gateway callbacks, withdrawals. Order payment and cancellation
live with the order endpoints (orders/api.py). Every endpoint that moves money honours
`Idempotency-Key` (payments/idempotency.py)."""

from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.errors import NotAllowed
from payments import selectors, services
from payments.errors import UnknownGateway
from payments.gateways import enabled_gateways, get_gateway
from payments.idempotency import HEADER, idempotent
from payments.labels import entry_label
from payments.models import TopUpStatus, WithdrawalStatus
from riders.permissions import is_rider

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe: the same key replays the first response and moves money once.",
)


class EntryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField(source="transaction.created_at")
    kind = serializers.CharField(source="transaction.kind")
    label = serializers.SerializerMethodField()
    amount_fen = serializers.IntegerField()
    order = serializers.SerializerMethodField()
    receipt = serializers.SerializerMethodField()

    def get_label(self, entry) -> str:
        return entry_label(entry)

    def get_order(self, entry) -> str | None:
        order = entry.transaction.order
        return order.number if order else None

    def get_receipt(self, entry) -> str:
        return reverse("payments:receipt", args=[entry.transaction_id])


class WithdrawalOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount_fen = serializers.IntegerField()
    status = serializers.ChoiceField(choices=WithdrawalStatus.choices)
    requested_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField()
    decision_note = serializers.CharField()


class WalletApi(APIView):
    class OutputSerializer(serializers.Serializer):
        balance_fen = serializers.IntegerField()
        entries = EntryOutputSerializer(many=True)
        earnings_fen = serializers.IntegerField(allow_null=True)
        earnings_available_fen = serializers.IntegerField(allow_null=True)

    @extend_schema(
        responses=OutputSerializer,
        description="Wallet balance and the 50 latest entries; riders also get their earnings.",
    )
    def get(self, request):
        rider = is_rider(request.user)
        data = {
            "balance_fen": selectors.wallet_balance(request.user),
            "entries": selectors.entries_for(request.user)[:50],
            "earnings_fen": selectors.earnings_balance(request.user) if rider else None,
            "earnings_available_fen": selectors.earnings_available(request.user) if rider else None,
        }
        return Response(self.OutputSerializer(data).data)


class TopUpOutputSerializer(serializers.Serializer):
    intent_id = serializers.CharField()
    gateway = serializers.CharField()
    amount_fen = serializers.IntegerField()
    status = serializers.ChoiceField(choices=TopUpStatus.choices)
    pay_url = serializers.CharField()
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField()


def _topup_data(topup, pay_url: str | None = None) -> dict:
    return TopUpOutputSerializer(
        {
            "intent_id": topup.intent_id,
            "gateway": topup.gateway,
            "amount_fen": topup.amount_fen,
            "status": topup.status,
            "pay_url": pay_url or reverse("payments:sandbox_cashier", args=[topup.intent_id]),
            "created_at": topup.created_at,
            "paid_at": topup.paid_at,
        }
    ).data


class TopUpCreateApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        amount_fen = serializers.IntegerField(
            min_value=services.TOPUP_MIN_FEN, max_value=services.TOPUP_MAX_FEN
        )
        gateway = serializers.CharField(default="sandbox", max_length=20)

        def validate_gateway(self, value: str) -> str:
            if value not in enabled_gateways():
                raise serializers.ValidationError(str(UnknownGateway.default_message))
            return value

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: TopUpOutputSerializer},
        description="Start a top-up. Send the payer to `pay_url`; the wallet is credited when the "
        "gateway's signed callback arrives (poll GET /api/wallet/topups/<intent_id>/).",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def create():
            topup, intent = services.topup_create(user=request.user, **serializer.validated_data)
            return Response(_topup_data(topup, intent.pay_url), status=status.HTTP_201_CREATED)

        return idempotent(self, request, create)


class TopUpDetailApi(APIView):
    @extend_schema(responses=TopUpOutputSerializer)
    def get(self, request, intent_id: str):
        topup = selectors.topup_for_user(request.user, intent_id)
        return Response(_topup_data(topup))


class GatewayCallbackApi(APIView):
    """Called by the payment gateway, not by people: authenticated by the payload's signature."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description="Processed (or a replay, acknowledged)."),
            401: OpenApiResponse(description="Bad or missing signature."),
            400: OpenApiResponse(description="Malformed, stale or amount mismatch."),
            404: OpenApiResponse(description="Unknown gateway or payment intent."),
            409: OpenApiResponse(description="Duplicate: the intent was already paid."),
        },
        description="Gateway notifications (the sandbox signs the raw body with HMAC-SHA256 in "
        "`X-Sandbox-Signature`). Every attempt is recorded with its outcome.",
    )
    def post(self, request, gateway: str):
        try:
            result = services.gateway_callback_receive(
                gateway=gateway,
                body=request.body,
                headers=request.headers,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
        except UnknownGateway:
            raise Http404(_("No such gateway")) from None

        http_status, body = get_gateway(gateway).acknowledge(result)
        return Response(body, status=http_status)


class WithdrawalListCreateApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        amount_fen = serializers.IntegerField(min_value=services.WITHDRAWAL_MIN_FEN)

    def _rider(self, request):
        if not is_rider(request.user):
            raise NotAllowed(NotAllowed.default_message)

    @extend_schema(responses=WithdrawalOutputSerializer(many=True))
    def get(self, request):
        self._rider(request)
        withdrawals = selectors.withdrawals_for(request.user)[:100]
        return Response(WithdrawalOutputSerializer(withdrawals, many=True).data)

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: WithdrawalOutputSerializer,
            402: OpenApiResponse(description="More than the available earnings."),
        },
    )
    def post(self, request):
        self._rider(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def create():
            withdrawal = services.withdrawal_request(
                rider=request.user, amount_fen=serializer.validated_data["amount_fen"]
            )
            return Response(
                WithdrawalOutputSerializer(withdrawal).data, status=status.HTTP_201_CREATED
            )

        return idempotent(self, request, create)


class OrderMoneyOutputSerializer(serializers.Serializer):
    due_fen = serializers.IntegerField(source="due")
    paid_fen = serializers.IntegerField(source="paid")
    held_fen = serializers.IntegerField(source="held")
    refunded_fen = serializers.IntegerField(source="refunded")
    rider_compensation_fen = serializers.IntegerField(source="rider_compensation")
    late_compensation_fen = serializers.IntegerField(source="late_compensation")


def order_money_data(order) -> dict:
    """The money block of an order answer (orders/api.py adds it to pay and cancel)."""
    return OrderMoneyOutputSerializer(selectors.order_money(order)).data
