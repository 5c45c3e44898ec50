from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from payments import services

CANCEL_REASONS = [
    ("changed_mind", _("I changed my mind")),
    ("too_slow", _("It is taking too long")),
    ("wrong_details", _("I entered wrong details")),
    ("done_myself", _("I did it myself")),
    ("rider_asked", _("The rider asked me to cancel")),
    ("other", _("Other")),
]


def cancel_note(reason: str, detail: str = "") -> str:
    """What the order's event log and the refund's memo record about a cancellation."""
    label = str(dict(CANCEL_REASONS).get(reason, reason))
    return f"{label}: {detail}".strip(": ")[:255] if detail else label


class TopUpForm(forms.Form):
    amount_yuan = forms.IntegerField(
        label=_("Amount (¥)"),
        min_value=services.TOPUP_MIN_FEN // 100,
        max_value=services.TOPUP_MAX_FEN // 100,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
    )

    @property
    def amount_fen(self) -> int:
        return self.cleaned_data["amount_yuan"] * 100


class WithdrawalForm(forms.Form):
    amount_yuan = forms.DecimalField(
        label=_("Amount (¥)"),
        min_value=Decimal(services.WITHDRAWAL_MIN_FEN) / 100,
        max_digits=9,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01"}),
    )

    @property
    def amount_fen(self) -> int:
        # Decimal, never float: ¥12.34 is exactly 1234 fen.
        return int(self.cleaned_data["amount_yuan"] * 100)


class CancelForm(forms.Form):
    reason = forms.ChoiceField(label=_("Why are you cancelling?"), choices=CANCEL_REASONS)
    detail = forms.CharField(label=_("Anything to add?"), max_length=200, required=False)

    @property
    def note(self) -> str:
        return cancel_note(self.cleaned_data["reason"], self.cleaned_data["detail"])


class DisputeForm(forms.Form):
    reason = forms.CharField(
        label=_("What went wrong?"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("An operator reads this and decides on a refund."),
    )
