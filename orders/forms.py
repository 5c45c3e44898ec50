from django import forms
from django.utils.translation import gettext_lazy as _

from campus.models import Building
from campus.selectors import building_list
from orders.models import Kind, RequiredGender


class BuildingChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Building) -> str:
        return f"{obj.display_name} ({obj.code})"


class OrderForm(forms.Form):
    kind = forms.ChoiceField(label=_("What do you need?"), choices=Kind.choices)
    pickup_building = BuildingChoiceField(label=_("Pick up at"), queryset=Building.objects.none())
    pickup_detail = forms.CharField(
        label=_("Pickup detail"),
        max_length=120,
        required=False,
        help_text=_("Counter, locker or shelf number"),
    )
    dropoff_building = BuildingChoiceField(label=_("Deliver to"), queryset=Building.objects.none())
    dropoff_detail = forms.CharField(
        label=_("Drop-off detail"), max_length=120, required=False, help_text=_("Room number")
    )
    description = forms.CharField(
        label=_("Description"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    required_gender = forms.ChoiceField(
        label=_("Rider"), choices=RequiredGender.choices, initial=RequiredGender.ANY
    )
    photo = forms.ImageField(label=_("Item photo"), required=False)

    def __init__(self, *args, campus=None, **kwargs):
        super().__init__(*args, **kwargs)
        qs = building_list(campus=campus)
        self.fields["pickup_building"].queryset = qs
        self.fields["dropoff_building"].queryset = qs
