"""Demo merchants: canteen windows and campus shops with menus, 满减, coupons and group meals, and
the merchant staff login "merchant" (dispatch.demo seeds it). Idempotent: a second run changes
nothing that exists."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from campus.models import Building, Campus
from merchants import services
from merchants.models import (
    Coupon,
    FundedBy,
    GroupMeal,
    MenuCategory,
    MenuItem,
    Merchant,
    OpeningHours,
    Option,
    OptionGroup,
    TierDiscount,
)

ALL_DAY = [("00:00", "12:00"), ("12:00", "00:00")]
MENUS = [
    {
        "slug": "lanzhou-noodles",
        "name": "兰州拉面",
        "name_en": "Lanzhou Beef Noodles",
        "kind": "canteen_window",
        "building": "C1",
        "counter": "3号窗口",
        "staff": True,
        "hours": [("06:30", "23:30")],
        "tiers": [(2000, 300), (3500, 600)],
        "menu": {
            "面 Noodles": [
                (
                    "牛肉拉面",
                    1500,
                    100,
                    None,
                    [],
                    "Hand-pulled noodles in beef broth",
                    [
                        ("Size", True, False, [("Regular", 0), ("Large", 300)]),
                        ("Spice", True, False, [("Not spicy", 0), ("Mild", 0), ("Hot", 0)]),
                        ("Extras", False, True, [("Egg", 200), ("Extra beef", 600)]),
                    ],
                ),
                (
                    "刀削面",
                    1400,
                    100,
                    None,
                    [],
                    "Knife-cut noodles",
                    [("Size", True, False, [("Regular", 0), ("Large", 300)])],
                ),
                ("凉皮", 800, 100, 20, ["lunch", "dinner"], "Cold rice noodles", []),
            ],
            "小吃 Sides": [
                ("卤蛋", 200, 0, 30, [], "Braised egg", []),
                ("肉夹馍", 700, 50, 15, [], "Chinese burger", []),
                ("豆浆油条", 500, 50, None, ["breakfast"], "Soy milk and dough stick", []),
            ],
        },
    },
    {
        "slug": "spicy-pot",
        "name": "麻辣香锅",
        "name_en": "Spicy Pot",
        "kind": "canteen_window",
        "building": "C2",
        "counter": "2楼 8号",
        "hours": [("10:30", "14:00"), ("16:30", "22:30")],
        "tiers": [(3000, 500)],
        "menu": {
            "香锅 Pots": [
                (
                    "荤素香锅",
                    2600,
                    200,
                    None,
                    [],
                    "Meat and vegetables, stir-fried",
                    [("Spice", True, False, [("Mild", 0), ("Medium", 0), ("Numbing hot", 0)])],
                ),
                ("素香锅", 1800, 200, None, [], "Vegetables only", []),
                ("米饭", 100, 0, None, [], "Rice", []),
            ],
        },
    },
    {
        "slug": "campus-mart",
        "name": "校园超市",
        "name_en": "Campus Mart",
        "kind": "convenience",
        "building": "S1",
        "hours": ALL_DAY,
        "tiers": [],
        "menu": {
            "零食饮料 Snacks": [
                ("矿泉水", 200, 0, 200, [], "Water, 550 ml", []),
                ("方便面", 450, 0, 60, [], "Instant noodles", []),
                ("薯片", 800, 0, 3, [], "Crisps (few left)", []),
            ],
        },
    },
    {
        "slug": "milk-tea",
        "name": "一点点奶茶",
        "name_en": "Little Milk Tea",
        "kind": "milk_tea",
        "building": "S2",
        "hours": [("09:00", "23:00")],
        "tiers": [(2500, 400)],
        "menu": {
            "奶茶 Tea": [
                (
                    "珍珠奶茶",
                    1200,
                    50,
                    None,
                    [],
                    "Bubble milk tea",
                    [
                        ("Size", True, False, [("Medium", 0), ("Large", 300)]),
                        ("Sugar", True, False, [("Full", 0), ("Half", 0), ("None", 0)]),
                        (
                            "Toppings",
                            False,
                            True,
                            [("Pearls", 100), ("Coconut jelly", 100), ("Pudding", 200)],
                        ),
                    ],
                ),
                (
                    "柠檬茶",
                    1000,
                    50,
                    None,
                    [],
                    "Lemon tea",
                    [("Ice", True, False, [("Ice", 0), ("Less ice", 0), ("Warm", 0)])],
                ),
            ],
        },
    },
]


def _time(text: str) -> dt.time:
    h, m = (int(x) for x in text.split(":"))
    return dt.time(h % 24, m)


@transaction.atomic
def takeout_seed(*, campus: Campus, staff=None) -> list[Merchant]:
    made = []
    for spec in MENUS:
        merchant = Merchant.objects.filter(slug=spec["slug"]).first()
        if merchant is None:
            building = Building.objects.filter(campus=campus, code=spec["building"]).first()
            if building is None:
                continue  # a campus without that canteen or shop
            merchant = services.merchant_create(
                campus=campus,
                building=building,
                slug=spec["slug"],
                name=spec["name"],
                name_en=spec["name_en"],
                kind=spec["kind"],
                counter=spec.get("counter", ""),
                staff=[staff] if staff is not None and spec.get("staff") else (),
            )
            OpeningHours.objects.bulk_create(
                OpeningHours(merchant=merchant, weekday=d, opens=_time(a), closes=_time(b))
                for d in range(7)
                for a, b in spec["hours"]
            )
            for threshold, discount in spec["tiers"]:
                TierDiscount.objects.create(
                    merchant=merchant, threshold_fen=threshold, discount_fen=discount
                )
            _menu(merchant, spec["menu"])
        made.append(merchant)
    _promotions(campus, made)
    return made


def _menu(merchant: Merchant, menu: dict) -> None:
    for position, (category_name, items) in enumerate(menu.items()):
        category = MenuCategory.objects.create(
            merchant=merchant, name=category_name, position=position
        )
        for i, (name, price, box, stock, periods, description, groups) in enumerate(items):
            item = MenuItem.objects.create(
                merchant=merchant,
                category=category,
                name=name,
                description=description,
                price_fen=price,
                packaging_fen=box,
                stock=stock,
                periods=periods,
                position=i,
            )
            for g, (group_name, required, multiple, options) in enumerate(groups):
                group = OptionGroup.objects.create(
                    item=item, name=group_name, required=required, multiple=multiple, position=g
                )
                Option.objects.bulk_create(
                    Option(group=group, name=o, price_delta_fen=d, position=j)
                    for j, (o, d) in enumerate(options)
                )


def _promotions(campus: Campus, merchants: list[Merchant]) -> None:
    now = timezone.now()
    today = timezone.localdate()
    coupons = [
        ("demo-welcome", "新人红包 ¥5", None, 500, 1500, True, True, FundedBy.PLATFORM),
        ("demo-lunch", "午餐红包 ¥3", None, 300, 2000, True, False, FundedBy.PLATFORM),
        (
            "demo-tea",
            "奶茶店 ¥2 (不与满减同享)",
            "milk-tea",
            200,
            1000,
            False,
            False,
            FundedBy.MERCHANT,
        ),
    ]
    for code, title, slug, off, min_spend, stacks, new_only, funded in coupons:
        if Coupon.objects.filter(code=code).exists():
            continue
        Coupon.objects.create(
            campus=campus,
            merchant=Merchant.objects.filter(slug=slug).first() if slug else None,
            code=code,
            title=title,
            discount_fen=off,
            min_spend_fen=min_spend,
            valid_from=now - dt.timedelta(days=1),
            valid_until=now + dt.timedelta(days=60),
            stacks_with_tiers=stacks,
            new_users_only=new_only,
            funded_by=funded,
        )
    noodles = next((m for m in merchants if m.slug == "lanzhou-noodles"), None)
    pot = next((m for m in merchants if m.slug == "spicy-pot"), None)
    meals = [
        (noodles, "拼好饭·牛肉面套餐", "牛肉拉面 + 卤蛋 + 小菜", 2000, 1290, 3, "11:00", "12:00"),
        (pot, "拼好饭·香锅双人餐", "荤素香锅 + 2 米饭", 3000, 1990, 2, "17:00", "18:00"),
        (noodles, "拼好饭·夜宵拉面", "牛肉拉面 + 卤蛋", 1900, 1190, 2, "21:30", "22:30"),
    ]
    for merchant, title, contents, regular, price, size, cutoff, delivery in meals:
        if merchant is None or GroupMeal.objects.filter(title=title).exists():
            continue
        GroupMeal.objects.create(
            merchant=merchant,
            title=title,
            contents=contents,
            regular_price_fen=regular,
            group_price_fen=price,
            group_size=size,
            cutoff=_time(cutoff),
            delivery_time=_time(delivery),
            starts_on=today - dt.timedelta(days=1),
            ends_on=today + dt.timedelta(days=60),
        )
