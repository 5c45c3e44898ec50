"""`manage.py check --deploy`: the sandbox gateway must not run with the development secret."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

DEV_SANDBOX_SECRET = "dev-only-sandbox-secret"


@register(Tags.security, deploy=True)
def sandbox_secret_check(app_configs, **kwargs):
    if "sandbox" in settings.PAYMENT_GATEWAYS and (
        settings.PAYMENT_SANDBOX_SECRET == DEV_SANDBOX_SECRET
    ):
        return [
            Warning(
                "The sandbox payment gateway is enabled with the development secret: anyone can "
                "forge top-up callbacks.",
                hint="Set PAYMENT_SANDBOX_SECRET, or leave 'sandbox' out of PAYMENT_GATEWAYS.",
                id="payments.W001",
            )
        ]
    return []
