"""Demo data: the supporter organisations, spaces and campaigns of the 2019 documents.

Facts come from shared/seed-facts.md. What the documents do not say is marked here:
coordinates are approximate (the station's or town's position), and prices, capacities
and hours that the documents do not give are demo values within the ¥500–¥1,500 a day
the Shizuoka programme quotes. Loading is idempotent: each row is found by its natural
key (e-mail, organisation name, space slug, unit name, campaign slug) and only created
when missing, so running `flask seed` twice changes nothing. One exception: a space's
contact e-mail (a made-up address under example.jp, contact_email) is filled in on an
existing demo database where it is empty, never over what an operator entered.

Telework Days (2019, and the coming summer's) is one national campaign per year
(national_for, slug telework-days-<year>); the municipalities' campaigns of that year are
its local programmes.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking import clock
from booking.models import (
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Eligibility,
    Membership,
    NationalCampaign,
    OpeningHours,
    Organisation,
    OrgKind,
    PricePer,
    Role,
    Space,
    SpaceKind,
    TeleworkCategory,
    Unit,
    UnitKind,
    User,
)
from booking.services import accounts
from booking.services.national_campaigns import TELEWORK_DAYS_CATEGORIES

DEMO_PASSWORD = "telework-demo-2019"  # demo only: printed by `flask seed`, in the README

H = 60  # minutes in an hour

ORGANISATIONS = [
    # name, name_en, kind, prefecture, address
    ("駒ヶ根市", "Komagane City", OrgKind.MUNICIPALITY, 20, "長野県駒ヶ根市赤須町20-1"),
    ("吉川市", "Yoshikawa City", OrgKind.MUNICIPALITY, 11, "埼玉県吉川市吉川2-1-1"),
    ("徳島県", "Tokushima Prefecture", OrgKind.MUNICIPALITY, 36, "徳島県徳島市万代町1-1"),
    ("静岡市", "Shizuoka City", OrgKind.MUNICIPALITY, 22, "静岡県静岡市葵区追手町5-1"),
    ("NPO法人チルドリン徳島", "NPO Childrin Tokushima", OrgKind.OPERATOR, 36, "徳島県徳島市"),
    ("エニシア静岡", "Enishia Shizuoka", OrgKind.OPERATOR, 22, "静岡県静岡市葵区御幸町6-10"),
    ("コテラス七間町", "Coterrace Shichikencho", OrgKind.OPERATOR, 22, "静岡県静岡市葵区七間町"),
    ("いちぼし HR STUDIO", "Ichiboshi HR Studio", OrgKind.OPERATOR, 22, "静岡県静岡市葵区安東"),
    ("日本色", "Nihon-iro", OrgKind.OPERATOR, 22, "静岡県静岡市駿河区用宗"),
    ("デモ商事株式会社", "Demo Trading Co., Ltd.", OrgKind.COMPANY, 13, "東京都千代田区丸の内1-1"),
]

# The demo's qualified invoices (適格請求書): one operator has a registration number, made up
# and valid by its check digit only; the others issue plain receipts (領収書), so the demo
# shows both.
REGISTRATION_NUMBERS = {"エニシア静岡": "T7123456789012"}

USERS = [
    # email, name, organisation (None = site admin)
    ("admin@example.jp", "サイト管理者", None),
    ("company@example.jp", "山田 花子", "デモ商事株式会社"),
    ("operator@example.jp", "鈴木 一郎", "エニシア静岡"),
    ("city@example.jp", "佐藤 次郎", "吉川市"),
    ("komagane@example.jp", "田中 三郎", "駒ヶ根市"),
]

WEEKDAYS = range(5)
WEDNESDAY = 2
MONDAY_TO_SATURDAY = range(6)
EVERY_DAY = range(7)
ALL_DAY = (0, 24 * H)

SPACES = [
    {
        "slug": "koto-komagane", "org": "駒ヶ根市", "kind": SpaceKind.SATELLITE_OFFICE,
        "name": "テレワークオフィス「Koto」", "name_en": "Telework Office Koto",
        "description": "駒ヶ根市が2017年3月に開設し、民間事業者と運営するテレワークオフィス。"
        "普段は会員専用ですが、テレワーク・デイズの期間中は誰でも利用でき、"
        "中央アルプス駒ヶ岳ロープウェイなどの観光と組み合わせた有償のワーケーション拠点にもなります。"
        "子育て中など働く時間が限られる地元の方の仕事場でもあります。",
        "description_en": "Opened by Komagane City in March 2017 and run with a private operator. "
        "Usually members only; during Telework Days open to anyone working remotely, and a paid "
        "workation base for visitors to the Central Alps Komagatake Ropeway.",
        "prefecture": 20, "city": "駒ヶ根市", "address": "駒ヶ根市中央",
        "lat": 35.7287, "lon": 137.9337, "station": "駒ヶ根駅",
        "access": "JR飯田線 駒ヶ根駅から徒歩約5分", "access_en": "About 5 min walk from Komagane Station (JR Iida Line)",
        "amenities": ["wifi", "printer", "monitors", "phone_booths", "kitchen", "parking"],
        # Open on Saturdays too: a workation base for visitors (demo hours).
        "hours": (MONDAY_TO_SATURDAY, 9 * H, 18 * H), "holidays_closed": True,
        "units": [
            {"name": "会員デスク", "name_en": "Member desks", "kind": UnitKind.DESK, "capacity": 12,
             "price": 0, "per": PricePer.DAY, "members_only": True},
            {"name": "ワーケーション利用デスク(有償)", "name_en": "Workation desk (paid)",
             "kind": UnitKind.DESK, "capacity": 4, "price": 1000, "per": PricePer.DAY},
        ],
    },
    {
        "slug": "oasis-yoshikawa", "org": "吉川市", "kind": SpaceKind.PUBLIC_FACILITY,
        "name": "市民交流センターおあしす", "name_en": "Citizens' Exchange Center Oasis",
        "description": "吉川市きよみ野の市民交流センター。テレワーク・デイズの期間、"
        "ミーティングルームを無料の臨時テレワークオフィスとして開放します(7/23〜7/26 9:00〜18:00)。",
        "description_en": "Yoshikawa's citizens' centre in Kiyomino. During Telework Days its "
        "meeting room is a free temporary telework office (7/23–7/26, 9:00–18:00).",
        "prefecture": 11, "city": "吉川市", "address": "吉川市きよみ野",
        "lat": 35.8787, "lon": 139.8563, "station": "吉川美南駅",
        "access": "JR武蔵野線 吉川美南駅から徒歩圏", "access_en": "Walking distance from Yoshikawa-Minami Station (JR Musashino Line)",
        "amenities": ["wifi", "whiteboard", "parking"],
        "hours": (EVERY_DAY, 9 * H, 21 * H), "holidays_closed": False,
        "units": [
            {"name": "ミーティングルーム(臨時テレワークオフィス)",
             "name_en": "Meeting room (temporary telework office)", "kind": UnitKind.DESK,
             "capacity": 20, "price": 0, "per": PricePer.DAY, "members_only": True},
        ],
    },
    {
        "slug": "telework-center-tokushima", "org": "NPO法人チルドリン徳島",
        "kind": SpaceKind.SATELLITE_OFFICE,
        "name": "テレワークセンター徳島", "name_en": "Telework Center Tokushima",
        "description": "徳島県の委託でNPO法人チルドリン徳島が運営。テレワーク・デイズの期間中は研修室をコワーキングスペースとして開放します。",
        "description_en": "Run by the NPO Childrin Tokushima for the prefecture. During Telework "
        "Days its training room opens as a coworking space.",
        "prefecture": 36, "city": "徳島市", "address": "徳島市",
        "lat": 34.0703, "lon": 134.5548, "station": "徳島駅",
        "access": "JR徳島駅から徒歩圏", "access_en": "Walking distance from Tokushima Station",
        "amenities": ["wifi", "projector", "whiteboard"],
        "hours": (WEEKDAYS, 9 * H, 17 * H), "holidays_closed": True,
        "units": [
            {"name": "研修室(コワーキング)", "name_en": "Training room (coworking)",
             "kind": UnitKind.DESK, "capacity": 20, "price": 0, "per": PricePer.DAY,
             "members_only": True},
        ],
    },
    {
        "slug": "enishia-shizuoka", "org": "エニシア静岡", "kind": SpaceKind.COWORKING,
        "name": "エニシア静岡", "name_en": "Enishia Shizuoka",
        "description": "丸井静岡店8階、85席のコワーキングスペース。会議室、個室、セミナールームもあります。",
        "description_en": "An 85-seat coworking space on the 8th floor of Marui Shizuoka, with "
        "meeting rooms, private rooms and a seminar room.",
        "prefecture": 22, "city": "静岡市葵区", "address": "静岡市葵区御幸町6-10 丸井静岡店8F",
        "lat": 34.9738, "lon": 138.3866, "station": "静岡駅",
        "access": "静岡駅から徒歩5分", "access_en": "5 min walk from Shizuoka Station",
        "amenities": ["wifi", "printer", "projector", "whiteboard", "monitors", "private_booths",
                      "phone_booths"],
        "hours": (EVERY_DAY, 9 * H, 21 * H), "holidays_closed": False,
        "units": [
            {"name": "コワーキング席", "name_en": "Coworking desks", "kind": UnitKind.DESK,
             "capacity": 85, "price": 1000, "per": PricePer.DAY},
            {"name": "会議室", "name_en": "Meeting room", "kind": UnitKind.MEETING_ROOM, "capacity": 1,
             "fits": 8, "price": 1500, "per": PricePer.HOUR, "max_length": 8},
            {"name": "個室", "name_en": "Private room", "kind": UnitKind.PRIVATE_ROOM, "capacity": 1,
             "fits": 2, "price": 1500, "per": PricePer.DAY},
            {"name": "セミナールーム", "name_en": "Seminar room", "kind": UnitKind.MEETING_ROOM,
             "capacity": 1, "fits": 40, "price": 1500, "per": PricePer.HOUR, "max_length": 8},
        ],
    },
    {
        "slug": "coterrace-shichikencho", "org": "コテラス七間町", "kind": SpaceKind.COWORKING,
        "name": "コテラス七間町", "name_en": "Coterrace Shichikencho",
        "description": "静岡駅から徒歩10分、広いコワーキングラウンジに会議室と個室。",
        "description_en": "A large coworking lounge with meeting and private rooms, 10 min walk "
        "from Shizuoka Station.",
        "prefecture": 22, "city": "静岡市葵区", "address": "静岡市葵区七間町",
        "lat": 34.9757, "lon": 138.3813, "station": "静岡駅",
        "access": "静岡駅から徒歩10分", "access_en": "10 min walk from Shizuoka Station",
        "amenities": ["wifi", "printer", "whiteboard", "phone_booths"],
        "hours": (EVERY_DAY, 9 * H, 20 * H), "holidays_closed": False,
        "units": [
            {"name": "コワーキングラウンジ", "name_en": "Coworking lounge", "kind": UnitKind.DESK,
             "capacity": 60, "price": 800, "per": PricePer.DAY},
            {"name": "会議室", "name_en": "Meeting room", "kind": UnitKind.MEETING_ROOM, "capacity": 1,
             "fits": 6, "price": 1000, "per": PricePer.HOUR, "max_length": 8},
            {"name": "個室", "name_en": "Private room", "kind": UnitKind.PRIVATE_ROOM, "capacity": 1,
             "fits": 1, "price": 1500, "per": PricePer.DAY},
        ],
    },
    {
        "slug": "ichiboshi-hr-studio", "org": "いちぼし HR STUDIO", "kind": SpaceKind.COWORKING,
        "name": "いちぼし HR STUDIO", "name_en": "Ichiboshi HR Studio",
        "description": "2019年4月開業。1階に保育園、2階にコワーキング、3階にワンルーム4室とオフィス。子どもを預けて働けます。",
        "description_en": "Opened in April 2019: a nursery on the ground floor, coworking on the "
        "first, four one-room flats and an office above.",
        "prefecture": 22, "city": "静岡市葵区", "address": "静岡市葵区安東",
        "lat": 34.9863, "lon": 138.3880, "station": "静岡駅",
        "access": "静岡駅からバス", "access_en": "By bus from Shizuoka Station",
        "amenities": ["wifi", "printer", "nursery", "kitchen"],
        "hours": (WEEKDAYS, 9 * H, 18 * H), "holidays_closed": True,
        "units": [
            {"name": "2階コワーキング", "name_en": "Coworking (2F)", "kind": UnitKind.DESK,
             "capacity": 15, "price": 500, "per": PricePer.DAY},
        ],
    },
    {
        "slug": "nihon-iro-mochimune", "org": "日本色", "kind": SpaceKind.WORKATION_HOUSE,
        "name": "日本色(用宗の古民家一棟貸し)", "name_en": "Nihon-iro (whole old houses in Mochimune)",
        "description": "改修した古民家6棟を一棟ずつ貸し切り。海まで徒歩2分、静岡駅から2駅(7分)。企業の合宿やワーケーションに。",
        "description_en": "Six renovated old houses, each rented whole; 2 min walk to the sea, "
        "2 stops (7 min) from Shizuoka Station. Used by companies for retreats and workations.",
        "prefecture": 22, "city": "静岡市駿河区", "address": "静岡市駿河区用宗",
        "lat": 34.9335, "lon": 138.3733, "station": "用宗駅",
        "access": "JR用宗駅から徒歩、海まで徒歩2分", "access_en": "Walk from Mochimune Station; 2 min to the sea",
        "amenities": ["wifi", "kitchen", "shower", "parking"],
        "hours": (EVERY_DAY, *ALL_DAY), "holidays_closed": False,
        "units": [
            {"name": f"古民家 {n}棟目", "name_en": f"House {n}", "kind": UnitKind.WHOLE_HOUSE,
             "capacity": 1, "fits": 6, "price": 25000, "per": PricePer.NIGHT, "max_length": 14,
             "cancel_hours": 72}
            for n in range(1, 7)
        ],
    },
]


def core_day(starts_on: date, ends_on: date) -> date:
    """The campaign's core day (コア日): the Wednesday nearest 7/24 inside the period, as
    2019's was (2019-07-24, a Wednesday). A Wednesday 7/24 is kept; in 2027 (7/24 a
    Saturday) the nearest Wednesday, 7/21, falls before the period (7/22): 7/28."""
    target = date(starts_on.year, 7, 24)
    wednesdays = [starts_on + timedelta(days=n) for n in range((ends_on - starts_on).days + 1)
                  if (starts_on + timedelta(days=n)).weekday() == WEDNESDAY]
    # Two Wednesdays are never equally near (7 days apart): the nearest is one.
    return min(wednesdays, key=lambda day: abs((day - target).days))


def telework_days(year: int) -> dict:
    """The Telework Days campaign shape of 2019, moved to `year`: 7/22–9/6 and its core
    day (core_day)."""
    starts_on, ends_on = date(year, 7, 22), date(year, 9, 6)
    return {
        "starts_on": starts_on, "ends_on": ends_on,
        "core_days": [core_day(starts_on, ends_on).isoformat()],
    }


def national_for(year: int) -> dict:
    """Telework Days of `year` as one national campaign (seed-facts.md): the 2019 period
    and core day, moved to `year` (telework_days), and its three categories. The municipal
    campaigns of campaigns_for(year) are its programmes."""
    return {
        "slug": f"telework-days-{year}",
        "name": f"テレワーク・デイズ{year}", "name_en": f"Telework Days {year}",
        "description": "総務省などが呼びかける全国一斉のテレワーク。期間中に各団体がテレワークを実施し、"
        "コア日には特に多くの人が一斉に取り組みます。交通混雑の緩和と、テレワークを定着させることが目的です。",
        "description_en": "Nationwide telework called for by the Ministry of Internal Affairs and "
        "Communications and others: organisations telework during the period, as many people as "
        "possible on the core day, to relieve congestion and make telework a lasting way of working.",
        **telework_days(year), "categories": TELEWORK_DAYS_CATEGORIES,
    }


def campaigns_for(year: int) -> list[dict]:
    td = telework_days(year)
    return [
        {
            "slug": f"telework-days-{year}-yoshikawa", "org": "吉川市",
            "name": f"テレワーク・デイズ{year}(吉川市)", "name_en": f"Telework Days {year} (Yoshikawa)",
            "description": "市民交流センターおあしすのミーティングルームを無料の臨時テレワークオフィスとして開放します。",
            "description_en": "The meeting room of the Oasis centre as a free temporary telework office.",
            **td,
            "slots": [{"space": "oasis-yoshikawa", "unit": "ミーティングルーム(臨時テレワークオフィス)",
                       "start": date(year, 7, 23), "end": date(year, 7, 26), "window": (9 * H, 18 * H),
                       "seats": 20, "price": 0, "per_company_day": 5}],
        },
        {
            "slug": f"telework-days-{year}-komagane", "org": "駒ヶ根市",
            "name": f"テレワーク・デイズ{year}(駒ヶ根市)", "name_en": f"Telework Days {year} (Komagane)",
            "description": "期間中、会員専用のテレワークオフィス「Koto」をテレワークをする誰にでも開放します。",
            "description_en": "During the period, the members-only Koto office opens to anyone working remotely.",
            **td,
            "slots": [{"space": "koto-komagane", "unit": "会員デスク", "start": td["starts_on"],
                       "end": td["ends_on"], "window": (9 * H, 18 * H), "seats": 8, "price": 0}],
        },
        {
            "slug": f"telework-days-{year}-tokushima", "org": "徳島県",
            "name": f"テレワーク・デイズ{year}(徳島県)", "name_en": f"Telework Days {year} (Tokushima)",
            "description": "テレワークセンター徳島の研修室を、期間中コワーキングスペースとして開放します。",
            "description_en": "The training room of Telework Center Tokushima opens as coworking.",
            **td,
            "slots": [{"space": "telework-center-tokushima", "unit": "研修室(コワーキング)",
                       "start": td["starts_on"], "end": td["ends_on"], "window": (9 * H, 17 * H),
                       "seats": 20, "price": 0}],
        },
        {
            "slug": f"shizuoka-trial-{year}", "org": "静岡市",
            "name": f"静岡市お試しテレワーク体験{year}", "name_en": f"Shizuoka trial telework {year}",
            "description": "首都圏などの県外企業を対象に、静岡駅周辺の施設利用料を上限まで市が負担します。",
            "description_en": "For companies from outside the prefecture: the city pays facility "
            "fees around Shizuoka Station up to a cap.",
            **td,
            "slots": [{"space": "enishia-shizuoka", "unit": "コワーキング席", "start": td["starts_on"],
                       "end": td["ends_on"], "window": (9 * H, 21 * H), "seats": 10, "price": None,
                       "subsidy_cap": 1000, "eligibility": Eligibility.OUTSIDE_PREFECTURE}],
            # The city lends pocket Wi-Fi to trial companies (seed-facts); how many: demo value.
            "extras": [{"name": "ポケットWi-Fi", "name_en": "Pocket Wi-Fi", "quantity": 5,
                        "description": "滞在中に無料で貸し出します。",
                        "description_en": "Lent free for the stay."}],
        },
    ]


def contact_email(slug: str) -> str:
    """A demo space's contact address: made up, under example.jp (never a real mailbox). No
    phone numbers: an invented number could be somebody's, so the demo leaves it empty."""
    return f"info@{slug}.example.jp"


def coming_summer(today: date) -> int:
    """The year of the next Telework Days period that has not ended yet."""
    return today.year if today <= date(today.year, 9, 6) else today.year + 1


def get_or_add(session: Session, model, where: dict, **values):
    """The row found by its natural key `where`, or a new one with `values` (flushed):
    (row, whether it was created). Every demo row is found this way (idempotent)."""
    found = session.scalar(sa.select(model).filter_by(**where))
    if found is not None:
        return found, False
    obj = model(**where, **values)
    session.add(obj)
    session.flush()
    return obj, True


def load(session: Session, today: date | None = None) -> dict[str, int]:
    """Loads the demo data; returns how many rows of each kind it created."""
    created: dict[str, int] = {}

    def count(kind: str, was_created: bool) -> None:
        created[kind] = created.get(kind, 0) + int(was_created)

    orgs: dict[str, Organisation] = {}
    for name, name_en, kind, pref, address in ORGANISATIONS:
        org, new = get_or_add(
            session, Organisation, {"name": name}, name_en=name_en, kind=kind,
            prefecture_code=pref, address=address, approved_at=clock.now(),
            telework_category=TeleworkCategory.IMPLEMENTING if kind == OrgKind.COMPANY else None,
        )
        orgs[name] = org
        count("organisations", new)
        if name in REGISTRATION_NUMBERS and not org.invoice_registration_number:
            org.invoice_registration_number = REGISTRATION_NUMBERS[name]

    for email, name, org_name in USERS:
        user = session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            # Demo accounts count as verified (nobody can read their mailboxes).
            user = accounts.create_user(session, email=email, password=DEMO_PASSWORD, name=name,
                                        is_admin=org_name is None, verified=True)
            count("users", True)
        if org_name:
            _, new = get_or_add(session, Membership,
                                 {"user_id": user.id, "organisation_id": orgs[org_name].id},
                                 role=Role.OWNER)
            count("memberships", new)

    units: dict[tuple[str, str], Unit] = {}
    for spec in SPACES:
        space, new = get_or_add(
            session, Space, {"slug": spec["slug"]}, organisation_id=orgs[spec["org"]].id,
            kind=spec["kind"], name=spec["name"], name_en=spec["name_en"],
            description=spec["description"], description_en=spec["description_en"],
            prefecture_code=spec["prefecture"], city=spec["city"], address=spec["address"],
            lat=spec["lat"], lon=spec["lon"], coordinates_approximate=True,
            nearest_station=spec["station"], access=spec["access"], access_en=spec["access_en"],
            amenities=spec["amenities"], closed_on_holidays=spec["holidays_closed"],
            contact_email=contact_email(spec["slug"]),
        )
        count("spaces", new)
        if not space.contact_email:  # a demo database from before spaces had a contact
            space.contact_email = contact_email(spec["slug"])
        if new:
            days, opens, closes = spec["hours"]
            for weekday in days:
                session.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=opens,
                                         closes_min=closes))
        for u in spec["units"]:
            unit, new = get_or_add(
                session, Unit, {"space_id": space.id, "name": u["name"]}, name_en=u["name_en"],
                kind=u["kind"], capacity=u["capacity"], fits_people=u.get("fits", 1),
                price_amount=u["price"], price_per=u["per"], members_only=u.get("members_only", False),
                max_length=u.get("max_length", 30), cancel_deadline_hours=u.get("cancel_hours", 24),
            )
            units[(spec["slug"], u["name"])] = unit
            count("units", new)

    years = sorted({2019, coming_summer(today or clock.today())})
    for year in years:
        n = national_for(year)
        national, national_new = get_or_add(
            session, NationalCampaign, {"slug": n["slug"]}, name=n["name"], name_en=n["name_en"],
            description=n["description"], description_en=n["description_en"],
            starts_on=n["starts_on"], ends_on=n["ends_on"], core_days=n["core_days"],
            categories=[dict(c) for c in n["categories"]], published=True,
        )
        count("national_campaigns", national_new)
        for spec in campaigns_for(year):
            campaign, new = get_or_add(
                session, Campaign, {"slug": spec["slug"]}, organisation_id=orgs[spec["org"]].id,
                name=spec["name"], name_en=spec["name_en"], description=spec["description"],
                description_en=spec["description_en"], starts_on=spec["starts_on"],
                ends_on=spec["ends_on"], core_days=spec["core_days"], published=True,
            )
            count("campaigns", new)
            # Its national campaign's programme, when either is new (an older demo
            # database's campaigns join the national campaign made now); a programme a
            # municipality has since detached stays as it left it.
            if new or national_new:
                campaign.national_campaign_id = national.id
            for e in spec.get("extras", []):
                _extra, made = get_or_add(session, CampaignExtra,
                                           {"campaign_id": campaign.id, "name": e["name"]},
                                           name_en=e["name_en"], quantity=e["quantity"],
                                           description=e["description"],
                                           description_en=e["description_en"])
                count("campaign_extras", made)
            if not new:
                continue
            for s in spec["slots"]:
                session.add(CampaignSlot(
                    campaign_id=campaign.id, unit_id=units[(s["space"], s["unit"])].id,
                    start_date=s["start"], end_date=s["end"], daily_start_min=s["window"][0],
                    daily_end_min=s["window"][1], seats=s["seats"], price_amount=s["price"],
                    subsidy_cap=s.get("subsidy_cap"),
                    max_seats_per_company_per_day=s.get("per_company_day"),
                    eligibility=s.get("eligibility", Eligibility.ANY_COMPANY),
                ))
                count("campaign_slots", True)
    session.flush()
    return created
