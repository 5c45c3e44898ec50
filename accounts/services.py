from django.db import transaction

from accounts.models import Address, Gender, User


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    gender: str = Gender.UNDISCLOSED,
    phone: str = "",
    first_name: str = "",
    is_staff: bool = False,
) -> User:
    user = User(username=username, gender=gender, phone=phone, first_name=first_name)
    user.is_staff = is_staff
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


def user_rotate_field_keys() -> int:
    """Re-encrypt every encrypted field under the newest key; returns how many rows changed."""
    count = 0
    for user in User.objects.exclude(phone="").iterator():
        # Loading decrypts with any key; saving encrypts with the first one.
        user.save(update_fields=["phone"])
        count += 1
    return count


@transaction.atomic
def address_save(
    *, user: User, building, room: str = "", note: str = "", label: str, address=None
) -> Address:
    """Create a saved address for `user`, or update `address` (which must be theirs)."""
    if address is None:
        address = Address(user=user)
    elif address.user_id != user.pk:
        raise PermissionError("not this user's address")
    address.label, address.building, address.room, address.note = label, building, room, note
    address.full_clean(exclude=["user"])
    address.save()
    return address


@transaction.atomic
def address_delete(*, address: Address, user: User) -> None:
    if address.user_id != user.pk:
        raise PermissionError("not this user's address")
    address.delete()
