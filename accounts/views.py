from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.forms import AddressForm, SignupForm
from accounts.models import Address
from campus.selectors import campus_default


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
        status = 400
    return render(request, "accounts/signup.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def address_list(request):
    """Saved addresses: the list and the form to add one."""
    form = AddressForm(request.POST or None, campus=campus_default())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            services.address_save(user=request.user, **form.cleaned_data)
            messages.success(request, _("Address saved."))
            return redirect("accounts:addresses")
        status = 400
    addresses = Address.objects.filter(user=request.user).select_related("building")
    return render(
        request, "accounts/addresses.html", {"form": form, "addresses": addresses}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def address_edit(request, pk: int):
    address = get_object_or_404(Address, pk=pk, user=request.user)
    form = AddressForm(request.POST or None, instance=address, campus=campus_default())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            services.address_save(user=request.user, address=address, **form.cleaned_data)
            messages.success(request, _("Address saved."))
            return redirect("accounts:addresses")
        status = 400
    return render(
        request, "accounts/address_edit.html", {"form": form, "address": address}, status=status
    )


@login_required
@require_POST
def address_delete(request, pk: int):
    address = get_object_or_404(Address, pk=pk, user=request.user)
    services.address_delete(address=address, user=request.user)
    messages.success(request, _("Address deleted."))
    return redirect("accounts:addresses")
