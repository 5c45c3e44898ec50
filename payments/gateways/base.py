"""What every payment gateway adapter provides. The ledger never talks to a gateway directly:
services ask an adapter for a payment intent, and the callback endpoint hands the raw request
to the adapter to verify and parse before any money moves.

The flow of a top-up, the same for every gateway:

1. `create_intent(topup)`: register the payment at the gateway; return where the payer goes
   (a hosted page, a QR code, parameters for the app SDK).
2. The payer pays on the gateway's side; the platform does nothing meanwhile.
3. The gateway calls `POST /api/payments/<gateway>/callback/` asynchronously, possibly several
   times. `parse_callback(body, headers)` verifies the signature and the timestamp and returns a
   `CallbackNotice`, or raises `CallbackRefused(outcome)`. The service then refuses replays and
   duplicates and credits the wallet exactly once (payments.services.gateway_callback_receive).
4. `acknowledge(result)` builds the answer the gateway expects, so that it stops retrying.

Payouts (rider withdrawals) go the other way: `payout(withdrawal)` asks the gateway to transfer
money to the rider and returns the gateway's reference for it.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaymentIntent:
    intent_id: str
    pay_url: str  # where the payer goes to pay (hosted page / QR content / deep link)
    params: dict = field(default_factory=dict)  # anything an app SDK needs


@dataclass(frozen=True)
class CallbackNotice:
    intent_id: str
    gateway_txn_id: str
    amount_fen: int
    succeeded: bool
    timestamp: int
    signature: str


class CallbackRefused(Exception):
    """The callback cannot be trusted (bad signature, stale, malformed): nothing is processed."""

    def __init__(self, outcome: str, *, intent_id: str = "", gateway_txn_id: str = ""):
        self.outcome, self.intent_id, self.gateway_txn_id = outcome, intent_id, gateway_txn_id
        super().__init__(outcome)


@dataclass(frozen=True)
class CallbackResult:
    outcome: str  # payments.models.CallbackOutcome
    accepted: bool
    http_status: int
    topup: object | None = None


class PaymentGateway(ABC):
    name: str = ""
    label: str = ""

    @abstractmethod
    def create_intent(self, topup) -> PaymentIntent: ...

    @abstractmethod
    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackNotice: ...

    @abstractmethod
    def acknowledge(self, result: CallbackResult) -> tuple[int, dict]: ...

    @abstractmethod
    def payout(self, withdrawal) -> str: ...
