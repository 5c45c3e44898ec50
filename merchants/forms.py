"""Forms of the takeout pages and the merchant portal. Money is typed in yuan ("12.5") and kept in
fen (orders.kinds.MoneyField); the services check everything a form cannot."""

import datetime as dt
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campus.models import Building
from merchants.models import MealPeriod, MenuCategory, Weekday
from orders.kinds import MoneyField, parse_yuan


def yuan_field(label, **kw) -> MoneyField:
    field = MoneyField(label=label, **kw)
    field.use_yuan()
    return field


class BuildingField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Building) -> str:
        return f"{obj.code} · {obj.display_name}"


# --- the student's side ---------------------------------------------------------------------------


class AddToCartForm(forms.Form):
    item = forms.IntegerField(widget=forms.HiddenInput)
    quantity = forms.IntegerField(
        label=gettext_lazy("Quantity"), min_value=1, max_value=99, initial=1
    )
    options = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any option id: the service checks it against the item's groups.
        raw = self.data.getlist("options") if hasattr(self.data, "getlist") else []
        self.fields["options"].choices = [(v, v) for v in raw]


class CartLineForm(forms.Form):
    quantity = forms.IntegerField(min_value=0, max_value=99)


class CheckoutForm(forms.Form):
    address = forms.TypedChoiceField(
        label=gettext_lazy("Saved address"), coerce=int, required=False, empty_value=None
    )
    dropoff_building = BuildingField(label=gettext_lazy("Deliver to"), queryset=Building.objects)
    dropoff_detail = forms.CharField(
        label=gettext_lazy("Room / where to leave it"), max_length=120, required=False
    )
    deliver_by = forms.ChoiceField(label=gettext_lazy("When"), required=False)
    coupon = forms.ChoiceField(label=gettext_lazy("Coupon"), required=False)
    note = forms.CharField(
        label=gettext_lazy("Note to the merchant"),
        max_length=140,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("No coriander, less spicy…")}),
    )
    quote_id = forms.CharField(required=False, widget=forms.HiddenInput)
    expect_total_fen = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, campus, addresses=(), slots=(), claims=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dropoff_building"].queryset = Building.objects.filter(campus=campus).order_by(
            "code"
        )
        self.addresses = {a.pk: a for a in addresses}
        self.fields["address"].choices = [("", "—")] + [
            (a.pk, f"{a.label}: {a.building.display_name} {a.room}") for a in addresses
        ]
        self.slots = {s.isoformat(): s for s in slots}
        self.fields["deliver_by"].choices = [("", _("As soon as possible"))] + [
            (iso, timezone.localtime(s).strftime("%m-%d %H:%M")) for iso, s in self.slots.items()
        ]
        self.claims = {str(c.pk): c for c in claims}
        self.fields["coupon"].choices = [
            ("auto", _("The best for this order")),
            ("none", _("No coupon")),
        ] + [(str(c.pk), c.coupon.title) for c in claims]

    def clean_deliver_by(self):
        value = self.cleaned_data.get("deliver_by") or ""
        return self.slots.get(value) if value else None

    def clean(self):
        data = super().clean()
        address = self.addresses.get(data.get("address"))
        if address is not None:
            data["dropoff_building"] = address.building
            data["dropoff_detail"] = data.get("dropoff_detail") or address.detail
            self.errors.pop("dropoff_building", None)
        return data

    def coupon_choice(self):
        """(claim or None, use the best)"""
        value = self.cleaned_data.get("coupon") or "auto"
        if value == "auto":
            return None, True
        return self.claims.get(value), False


class GroupOpenForm(forms.Form):
    dropoff_building = BuildingField(label=gettext_lazy("Deliver to"), queryset=Building.objects)
    dropoff_detail = forms.CharField(
        label=gettext_lazy("Room / where to leave it"), max_length=120, required=False
    )
    minutes = forms.IntegerField(
        label=gettext_lazy("Order in (minutes)"), min_value=5, max_value=120, initial=20
    )

    def __init__(self, *args, campus, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dropoff_building"].queryset = Building.objects.filter(campus=campus).order_by(
            "code"
        )


class MealJoinForm(forms.Form):
    building = BuildingField(label=gettext_lazy("Your building"), queryset=Building.objects)
    dropoff_detail = forms.CharField(label=gettext_lazy("Room"), max_length=60, required=False)

    def __init__(self, *args, campus, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["building"].queryset = Building.objects.filter(
            campus=campus, kind="dorm"
        ).order_by("code")


# --- the merchant portal -----------------------------------------------------------------------


class RejectForm(forms.Form):
    REASONS = [
        ("", gettext_lazy("Choose a reason")),
        ("sold_out", gettext_lazy("An item has sold out")),
        ("too_busy", gettext_lazy("Too busy to make it in time")),
        ("closing", gettext_lazy("We are closing")),
        ("other", gettext_lazy("Other (say below)")),
    ]
    reason = forms.ChoiceField(label=gettext_lazy("Reason"), choices=REASONS, required=False)
    detail = forms.CharField(label=gettext_lazy("Details"), max_length=160, required=False)

    def clean(self):
        data = super().clean()
        labels = dict(self.REASONS)
        parts = [str(labels[data["reason"]])] if data.get("reason") not in ("", "other") else []
        if data.get("detail"):
            parts.append(data["detail"].strip())
        if not parts:
            raise ValidationError(_("Tell the customer why you cannot take the order."))
        data["text"] = ": ".join(parts)
        return data


class ItemForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=60)
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    category = forms.ModelChoiceField(
        label=gettext_lazy("Category"), queryset=MenuCategory.objects.none(), required=False
    )
    price_fen = yuan_field(gettext_lazy("Price (¥)"), min_value=0)
    packaging_fen = yuan_field(gettext_lazy("Packaging fee (¥)"), min_value=0, initial=0)
    stock = forms.IntegerField(
        label=gettext_lazy("Portions left"),
        min_value=0,
        required=False,
        help_text=gettext_lazy("Leave empty for no limit."),
    )
    sold_out = forms.BooleanField(label=gettext_lazy("Sold out"), required=False)
    periods = forms.MultipleChoiceField(
        label=gettext_lazy("Sold at"),
        choices=MealPeriod.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: all day."),
    )
    position = forms.IntegerField(label=gettext_lazy("Position"), min_value=0, initial=0)
    active = forms.BooleanField(label=gettext_lazy("On the menu"), required=False, initial=True)
    photo = forms.ImageField(label=gettext_lazy("Photo"), required=False)

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = MenuCategory.objects.filter(merchant=merchant)

    def item_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("photo", None)
        return data


class CategoryForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Category"), max_length=40)
    position = forms.IntegerField(min_value=0, initial=0, required=False)


class OptionGroupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Option group"), max_length=40)
    required = forms.BooleanField(label=gettext_lazy("Required"), required=False)
    multiple = forms.BooleanField(label=gettext_lazy("Several choices"), required=False)
    max_choices = forms.IntegerField(label=gettext_lazy("At most"), min_value=1, required=False)


class SignedYuanField(forms.CharField):
    """Yuan that may be negative ("-1.5" for a small size), kept in fen."""

    def to_python(self, value):
        value = str(value or "").strip()
        if not value:
            return 0
        sign = -1 if value.startswith("-") else 1
        return sign * parse_yuan(value.lstrip("+-"))


class OptionForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Option"), max_length=40)
    price_delta_fen = SignedYuanField(
        label=gettext_lazy("Price change (¥)"),
        required=False,
        initial="0",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )


class StockForm(forms.Form):
    stock = forms.IntegerField(min_value=0, required=False)


class SettingsForm(forms.Form):
    prep_minutes = forms.IntegerField(
        label=gettext_lazy("Preparation time (min)"), min_value=1, max_value=180
    )
    busy = forms.BooleanField(label=gettext_lazy("Busy mode"), required=False)
    busy_extra_minutes = forms.IntegerField(
        label=gettext_lazy("Busy mode adds (min)"), min_value=0, max_value=120
    )
    paused = forms.BooleanField(label=gettext_lazy("Pause new orders"), required=False)
    paused_note = forms.CharField(
        label=gettext_lazy("Pause note for students"), max_length=100, required=False
    )
    min_order_fen = yuan_field(gettext_lazy("Minimum order (¥)"), min_value=0)


_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


def parse_intervals(text: str) -> list[tuple[dt.time, dt.time]]:
    """ "10:30-13:30, 16:30-19:30" -> [(10:30, 13:30), (16:30, 19:30)]; "24:00" is midnight."""
    out = []
    for part in re.split(r"[,，;；]", text or ""):
        if not part.strip():
            continue
        match = _HOURS_RE.match(part)
        if not match:
            raise ValidationError(_("Write hours like 10:30-13:30, 16:30-19:30."))
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
            raise ValidationError(_("%(t)s is not a time of day.") % {"t": part.strip()})
        opens, closes = dt.time(h1 % 24, m1), dt.time(h2 % 24, m2)
        if opens == closes:
            raise ValidationError(_("%(t)s opens and closes at once.") % {"t": part.strip()})
        out.append((opens, closes))
    return out


class HoursForm(forms.Form):
    """One line of intervals per weekday; empty: closed that day."""

    def __init__(self, *args, hours=(), **kwargs):
        super().__init__(*args, **kwargs)
        by_day: dict[int, list[str]] = {d: [] for d in Weekday.values}
        for row in hours:
            by_day[row.weekday].append(f"{row.opens:%H:%M}-{row.closes:%H:%M}")
        for day, label in Weekday.choices:
            self.fields[f"day_{day}"] = forms.CharField(
                label=label,
                required=False,
                initial=", ".join(by_day[day]),
                widget=forms.TextInput(attrs={"placeholder": _("closed")}),
            )

    def clean(self):
        data = super().clean()
        rows = []
        for day in Weekday.values:
            try:
                rows.extend((day, o, c) for o, c in parse_intervals(data.get(f"day_{day}", "")))
            except ValidationError as exc:
                self.add_error(f"day_{day}", exc)
        data["rows"] = rows
        return data


class ClosureForm(forms.Form):
    starts_on = forms.DateField(
        label=gettext_lazy("Closed from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(
        label=gettext_lazy("until (inclusive)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=100, required=False)


class TierForm(forms.Form):
    threshold_fen = yuan_field(gettext_lazy("Spend (¥)"), min_value=1)
    discount_fen = yuan_field(gettext_lazy("Save (¥)"), min_value=1)


class DayForm(forms.Form):
    day = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    days = forms.IntegerField(required=False, min_value=1, max_value=92)

    def range(self) -> tuple[dt.date, dt.date]:
        today = timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        last = data.get("day") or today
        days = data.get("days") or 1
        return last - dt.timedelta(days=days - 1), last
