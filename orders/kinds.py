"""Errand kinds: each kind's details form and the rules for what a customer must give.

Design. Kind details are typed columns on Order (nullable or blank for the other kinds), not a JSON
`details` blob: the budget cap and the actual cost are money the ledger settles and are checked
by database constraints (actual <= cap, a cap only and always on buy-for-me orders), the queue
start time is queried by the scheduler, and the pickup code is encrypted at rest. There are only
a dozen such columns.

Each kind has exactly one details form below. The order page renders it (money typed in yuan);
the API validates the `details` object with the same form (money in fen). `order_input_clean`
is the one place that checks a customer's input for a kind: the details, the places and the
item-photo rule (set per campus and kind by the operator). `orders.services.order_create` then
checks what must hold for every caller, the customer or the simulator (same campus, gender
rules, the price).
"""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campus.models import Building, BuildingKind
from orders.models import Courier, Kind, SizeClass, yuan
from orders.pricing import kind_setting_for

YUAN_RE = re.compile(r"^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$")
PICKUP_CODE_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z\- ]{1,19}$")


def parse_yuan(value) -> int:
    """'12.5' -> 1250 fen, exactly (no float on the way)."""
    match = YUAN_RE.match(str(value))
    if not match:
        raise ValidationError(_("Enter an amount in yuan, like 12.50."), code="invalid")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


class MoneyField(forms.IntegerField):
    """Integer fen. On pages (`yuan` on) people type yuan: "12.5" is 1250 fen."""

    yuan = False

    def to_python(self, value):
        if self.yuan and value not in self.empty_values:
            return parse_yuan(value)
        return super().to_python(value)

    def prepare_value(self, value):
        if self.yuan and isinstance(value, int):
            return yuan(value)
        return value

    def use_yuan(self) -> None:
        self.yuan = True
        for attr in ("min", "max"):
            self.widget.attrs.pop(attr, None)
        self.widget.attrs.update({"step": "0.01", "inputmode": "decimal", "data-unit": "yuan"})

    def run_validators(self, value):
        # Limits are stated in fen; shown to people in yuan.
        if value in self.empty_values:
            return
        if self.min_value is not None and value < self.min_value:
            raise ValidationError(
                _("At least ¥%(v)s.") % {"v": yuan(self.min_value)}, code="min_value"
            )
        if self.max_value is not None and value > self.max_value:
            raise ValidationError(
                _("At most ¥%(v)s.") % {"v": yuan(self.max_value)}, code="max_value"
            )


class DetailsForm(forms.Form):
    """The fields one kind adds to an order. `pricing_fields` are those the quote depends on."""

    pricing_fields: tuple[str, ...] = ()
    description_label = gettext_lazy("Description")
    description_required = True

    def __init__(self, *args, yuan: bool = False, for_quote: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            if isinstance(f, MoneyField) and yuan:
                f.use_yuan()
        if for_quote:
            for name in list(self.fields):
                if name not in self.pricing_fields:
                    del self.fields[name]

    @classmethod
    def check_places(cls, pickup: Building, dropoff: Building) -> dict[str, str]:
        return {}


class ParcelDetails(DetailsForm):
    courier = forms.ChoiceField(label=gettext_lazy("Courier"), choices=Courier.choices)
    pickup_code = forms.CharField(
        label=gettext_lazy("Pickup code (取件码)"),
        max_length=20,
        help_text=gettext_lazy("Shown only to the rider who takes your order, until delivery."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    size_class = forms.ChoiceField(
        label=gettext_lazy("Size"), choices=SizeClass.choices, initial=SizeClass.SMALL
    )
    pricing_fields = ("size_class",)
    description_label = gettext_lazy("Notes for the rider")
    description_required = False

    def clean_pickup_code(self) -> str:
        code = self.cleaned_data["pickup_code"].strip()
        if not PICKUP_CODE_RE.match(code):
            raise ValidationError(_("Enter the code as the courier sent it: letters, digits, -."))
        return code

    @classmethod
    def check_places(cls, pickup: Building, dropoff: Building) -> dict[str, str]:
        if pickup.kind != BuildingKind.PARCEL_STATION:
            return {"pickup_building": _("Parcels are picked up at a parcel station.")}
        return {}


class BuyDetails(DetailsForm):
    budget_cap_fen = MoneyField(
        label=gettext_lazy("Most the rider may spend"),
        min_value=100,
        help_text=gettext_lazy("Held when you pay; you pay only the actual cost on the receipt."),
    )
    size_class = forms.ChoiceField(
        label=gettext_lazy("Size"),
        choices=SizeClass.choices,
        initial=SizeClass.SMALL,
        required=False,
    )
    pricing_fields = ("budget_cap_fen", "size_class")
    description_label = gettext_lazy("Shopping list")

    def clean_size_class(self) -> str:
        return self.cleaned_data.get("size_class") or SizeClass.SMALL


class DocumentDetails(DetailsForm):
    confidential = forms.BooleanField(
        label=gettext_lazy("Confidential: sealed, hand to hand"),
        required=False,
        help_text=gettext_lazy(
            "You get a 4-digit delivery code; the rider hands it over only against it."
        ),
    )
    description_label = gettext_lazy("What is it?")


class QueueDetails(DetailsForm):
    start_at = forms.DateTimeField(
        label=gettext_lazy("Start at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    duration_minutes = forms.IntegerField(
        label=gettext_lazy("For how long (minutes)"),
        min_value=15,
        max_value=480,
        initial=60,
        widget=forms.NumberInput(attrs={"step": 15}),
    )
    pricing_fields = ("start_at", "duration_minutes")
    description_label = gettext_lazy("What to queue for, or which seat to hold")


class CustomDetails(DetailsForm):
    offered_price_fen = MoneyField(label=gettext_lazy("Your offer"), min_value=0)
    pricing_fields = ("offered_price_fen",)
    description_label = gettext_lazy("What do you need?")


KIND_DETAILS: dict[str, type[DetailsForm]] = {
    Kind.PARCEL: ParcelDetails,
    Kind.BUY: BuyDetails,
    Kind.DOCUMENT: DocumentDetails,
    Kind.QUEUE: QueueDetails,
    Kind.CUSTOM: CustomDetails,
}
# Every column a details form may set on an Order (the service sets only these).
DETAIL_FIELDS = {name for form in KIND_DETAILS.values() for name in form.base_fields}
# Kinds whose drop-off is the pickup place itself (the rider stays there).
DROPOFF_IS_PICKUP = {Kind.QUEUE}


def details_form(kind: str, data=None, **kwargs) -> DetailsForm:
    return KIND_DETAILS[kind](data, **kwargs)


def order_input_clean(
    *,
    campus,
    kind: str,
    pickup: Building,
    dropoff: Building | None,
    form: DetailsForm,
    description: str = "",
    photo=None,
    for_quote: bool = False,
) -> dict:
    """Check a customer's order of `kind` (its bound details `form`, see details_form); return the
    cleaned details. Raises ValidationError keyed by field (details fields by their own names)."""
    errors: dict[str, list] = {}
    setting = kind_setting_for(campus, kind)
    if not setting.enabled:
        raise ValidationError({"kind": _("This errand kind is not offered on this campus.")})
    cleaned: dict = {}
    if form.is_valid():
        cleaned = form.cleaned_data
    else:
        errors.update({name: list(errs) for name, errs in form.errors.items()})
    if dropoff is not None:
        for name, message in form.check_places(pickup, dropoff).items():
            errors.setdefault(name, []).append(message)
    if not for_quote:
        if form.description_required and not (description or "").strip():
            errors.setdefault("description", []).append(_("This field is required."))
        if setting.photo_required and not photo:
            errors.setdefault("photo", []).append(
                _("Add a photo of the item: it is required for this kind of errand.")
            )
    if errors:
        raise ValidationError(errors)
    return cleaned
