"""Payment gateways. Only those named in settings.PAYMENT_GATEWAYS are available."""

from django.conf import settings

from payments.errors import UnknownGateway
from payments.gateways.alipay import AlipayGateway
from payments.gateways.base import PaymentGateway
from payments.gateways.sandbox import SandboxGateway
from payments.gateways.wechat import WeChatPayGateway

GATEWAYS: dict[str, type[PaymentGateway]] = {
    SandboxGateway.name: SandboxGateway,
    WeChatPayGateway.name: WeChatPayGateway,
    AlipayGateway.name: AlipayGateway,
}


def enabled_gateways() -> list[str]:
    return [name for name in settings.PAYMENT_GATEWAYS if name in GATEWAYS]


def get_gateway(name: str) -> PaymentGateway:
    if name not in enabled_gateways():
        raise UnknownGateway()
    return GATEWAYS[name]()
