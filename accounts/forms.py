import re

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import Address, User


class SignupForm(UserCreationForm):
    phone = forms.CharField(label=_("Phone"), max_length=20, required=False)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "gender", "phone")

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        if phone and not re.fullmatch(r"1\d{10}", phone):
            raise forms.ValidationError(_("Enter an 11-digit mobile number starting with 1."))
        return phone


class AddressForm(forms.ModelForm):
    class Meta:
        model = Address
        fields = ("label", "building", "room", "note")

    def __init__(self, *args, campus=None, **kwargs):
        super().__init__(*args, **kwargs)
        from campus.selectors import building_list

        self.fields["building"].queryset = building_list(campus=campus)
