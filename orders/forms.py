from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Address
from campus.models import Building
from campus.selectors import building_list
from orders.kinds import (
    DROPOFF_IS_PICKUP,
    KIND_DETAILS,
    DetailsForm,
    MoneyField,
    details_form,
    order_input_clean,
)
from orders.models import CustomerRatingTag, Kind, RatingTag, RequiredGender

TIP_CHOICES = [(0, _("No tip")), (100, "¥1"), (200, "¥2"), (300, "¥3"), (500, "¥5"), (1000, "¥10")]
PICKUP_LABELS = {
    Kind.PARCEL: _("Parcel station"),
    Kind.BUY: _("Buy at"),
    Kind.DOCUMENT: _("Pick up at"),
    Kind.QUEUE: _("Where to queue"),
    Kind.CUSTOM: pgettext_lazy("place", "Start at"),
}


class ListedChoiceField(forms.ModelChoiceField):
    """Rendered from objects loaded once (several selects, one query); validated by the queryset."""

    _objects: list | None = None

    def use_objects(self, objects: list) -> None:
        self._objects = objects
        self.widget.choices = self.choices

    def _get_choices(self):
        if self._objects is None:
            return super()._get_choices()
        return [("", self.empty_label)] + [
            (o.pk, self.label_from_instance(o)) for o in self._objects
        ]

    choices = property(_get_choices, forms.ChoiceField.choices.fset)


class BuildingChoiceField(ListedChoiceField):
    def label_from_instance(self, obj: Building) -> str:
        return f"{obj.display_name} ({obj.code})"


class AddressChoiceField(ListedChoiceField):
    def label_from_instance(self, obj: Address) -> str:
        return str(obj)


class OrderForm(forms.Form):
    """The common part of every errand; `self.details` is the kind's own form (orders/kinds.py).

    Both are rendered in one <form> and checked together by orders.kinds.order_input_clean, the
    same check the API makes."""

    kind = forms.ChoiceField(label=_("What do you need?"), choices=Kind.choices)
    pickup_building = BuildingChoiceField(label=_("Pick up at"), queryset=Building.objects.none())
    pickup_detail = forms.CharField(
        label=_("Pickup detail"),
        max_length=120,
        required=False,
        help_text=_("Counter, locker or shelf number"),
    )
    address = AddressChoiceField(
        label=_("Saved address"),
        queryset=Address.objects.none(),
        required=False,
        empty_label=_("— choose the place below —"),
    )
    dropoff_building = BuildingChoiceField(
        label=_("Deliver to"), queryset=Building.objects.none(), required=False
    )
    dropoff_detail = forms.CharField(
        label=_("Drop-off detail"), max_length=120, required=False, help_text=_("Room number")
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photo = forms.FileField(
        label=_("Item photo"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    deliver_by = forms.DateTimeField(
        label=_("Deliver by (optional: book ahead)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    urgent = forms.BooleanField(label=_("Urgent"), required=False)
    required_gender = forms.ChoiceField(
        label=_("Rider"), choices=RequiredGender.choices, initial=RequiredGender.ANY
    )
    tip_fen = forms.TypedChoiceField(
        label=_("Tip for the rider"), choices=TIP_CHOICES, coerce=int, initial=0, required=False
    )

    def __init__(self, *args, campus=None, user=None, kind: str = Kind.PARCEL, **kwargs):
        super().__init__(*args, **kwargs)
        self.campus, self.user = campus, user
        self.errand_kind = self.data.get("kind") if self.data.get("kind") in Kind.values else kind
        qs = building_list(campus=campus)
        buildings = list(qs)
        for name in ("pickup_building", "dropoff_building"):
            self.fields[name].queryset = qs
            self.fields[name].use_objects(buildings)
        self.fields["pickup_building"].label = PICKUP_LABELS[self.errand_kind]
        self.address_map: dict[int, dict] = {}
        if user is not None and user.is_authenticated:
            addresses = Address.objects.filter(user=user).select_related("building")
            self.fields["address"].queryset = addresses
            self.fields["address"].use_objects(list(addresses))
            self.address_map = {
                a.pk: {"building": a.building_id, "detail": a.detail}
                for a in self.fields["address"]._objects
            }
        details_class = KIND_DETAILS[self.errand_kind]
        self.fields["description"].label = details_class.description_label
        self.fields["description"].required = details_class.description_required
        if self.errand_kind in DROPOFF_IS_PICKUP:
            for name in ("address", "dropoff_building", "dropoff_detail", "deliver_by"):
                del self.fields[name]
        if self.errand_kind not in (Kind.PARCEL, Kind.BUY, Kind.DOCUMENT):
            del self.fields["urgent"]
        self.details: DetailsForm = details_form(
            self.errand_kind, self.data if self.is_bound else None, yuan=True, initial=self.initial
        )

    def clean_tip_fen(self) -> int:
        return self.cleaned_data.get("tip_fen") or 0

    def clean(self):
        data = super().clean()
        address = data.get("address")
        if self.errand_kind in DROPOFF_IS_PICKUP:
            data["dropoff_building"] = data.get("pickup_building")
            data["dropoff_detail"] = data.get("pickup_detail", "")
        elif address is not None:
            data["dropoff_building"] = address.building
            data["dropoff_detail"] = address.detail
        elif not data.get("dropoff_building") and "dropoff_building" not in self.errors:
            self.add_error("dropoff_building", _("This field is required."))
        pickup = data.get("pickup_building")
        if pickup is None or self.campus is None:
            self.details.is_valid()  # show the details' own errors too
            return data
        try:
            data["details"] = order_input_clean(
                campus=self.campus,
                kind=self.errand_kind,
                pickup=pickup,
                dropoff=data.get("dropoff_building"),
                form=self.details,
                description=data.get("description", ""),
                photo=data.get("photo"),
            )
        except ValidationError as exc:
            self.add_errors(exc.message_dict)
        return data

    def add_errors(self, errors: dict) -> None:
        """Field messages from the kind rules or the pricing, each where its field is."""
        for name, messages in errors.items():
            if name in self.details.fields:
                if name not in self.details.errors:
                    self.details.add_error(name, messages)
            elif name in self.fields and name not in self.errors:
                self.add_error(name, messages)
            elif name not in self.fields:
                self.add_error(None, messages)

    def all_valid(self) -> bool:
        return self.is_valid() and self.details.is_valid() and not self.details.errors

    def order_kwargs(self) -> dict:
        """services.order_create's arguments from a valid form (photo: checked by the view)."""
        data = self.cleaned_data
        return {
            "kind": self.errand_kind,
            "pickup_building": data["pickup_building"],
            "pickup_detail": data.get("pickup_detail", ""),
            "dropoff_building": data["dropoff_building"],
            "dropoff_detail": data.get("dropoff_detail", ""),
            "description": data.get("description", ""),
            "required_gender": data["required_gender"],
            "details": data.get("details", {}),
            "urgent": data.get("urgent", False),
            "deliver_by": data.get("deliver_by"),
            "tip_fen": data.get("tip_fen") or 0,
        }


class DeliverForm(forms.Form):
    code = forms.CharField(
        label=_("Customer's delivery code"),
        max_length=8,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class CostForm(forms.Form):
    actual_cost_fen = MoneyField(label=_("What the shopping cost (¥)"), min_value=1)
    receipt_photo = forms.FileField(
        label=_("Receipt photo"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actual_cost_fen"].use_yuan()


class CheckInForm(forms.Form):
    lat = forms.FloatField(min_value=-90, max_value=90, widget=forms.HiddenInput)
    lng = forms.FloatField(min_value=-180, max_value=180, widget=forms.HiddenInput)
    accuracy = forms.FloatField(min_value=0, required=False, widget=forms.HiddenInput)


class RatingForm(forms.Form):
    stars = forms.TypedChoiceField(
        label=_("Stars"),
        choices=[(n, "★" * n) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    tags = forms.MultipleChoiceField(
        label=_("What stood out?"),
        choices=RatingTag.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    comment = forms.CharField(
        label=_("Comment (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CustomerRatingForm(RatingForm):
    """The rider rates the customer: the same stars and comment, the customer's own tags."""

    tags = forms.MultipleChoiceField(
        label=_("What stood out?"),
        choices=CustomerRatingTag.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
