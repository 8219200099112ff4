"""The one domain error type; its codes and messages live here, in one place."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# code -> (HTTP status, message). Messages are translated when shown.
MESSAGES = {
    "not_enough_seats": (409, _l("空席が足りません(残り%(available)d席)。")),
    # The same refusal for a room or house, let whole: nothing to count, it is taken.
    "not_enough_seats.whole": (409, _l("その日時は既に予約が入っています。別の日時を選んでください。")),
    "busy": (503, _l("混み合っています。もう一度お試しください。")),
    "closed": (422, _l("その日時は営業していません。")),
    # A day booking for today after closing time (reservations.day_period).
    "closed.today": (422, _l("本日の営業は終了しました。別の日付を選んでください。")),
    "outside_hours": (422, _l("営業時間外です。")),
    "in_past": (422, _l("過去の日時は予約できません。")),
    "lead_time": (422, _l("予約の受付期限を過ぎています。")),
    "too_short": (422, _l("予約の長さが最短に足りません。")),
    "too_long": (422, _l("予約の長さが最長を超えています。")),
    "bad_range": (422, _l("終了は開始より後にしてください。")),
    "bad_seats": (422, _l("席数が正しくありません。")),
    "unavailable": (404, _l("この施設は予約を受け付けていません。")),
    "members_only": (422, _l("この区画は会員専用です。")),
    "series_date_fixed": (
        422, _l("毎週の予約の日付は変えられません。時間や席数は変更できます。"
                "別の日にするには、この日をキャンセルして新しく予約してください。")),
    "no_company": (403, _l("予約には会社の登録が必要です。")),
    "not_yours": (404, _l("予約が見つかりません。")),
    "cancel_deadline": (409, _l("キャンセル期限を過ぎています。")),
    "already_cancelled": (409, _l("この予約はキャンセル済みです。")),
    "campaign_closed": (422, _l("このキャンペーン枠はその日時に提供されていません。")),
    "campaign_closed.today": (
        422, _l("このキャンペーン枠の本日の提供時間は終了しました。別の日付を選んでください。")
    ),
    # A slot whose last day is past (CampaignSlot.ended): shown as history, never booked.
    "campaign_closed.ended": (422, _l("このキャンペーン枠の提供は終了しました。")),
    "campaign_seats_per_day": (
        403, _l("キャンペーンの規則: 1社1日あたりの席数は%(limit)d席までです。")
    ),
    "campaign_bookings_per_company": (
        403, _l("キャンペーンの規則: 1社あたりの予約は%(limit)d回までです(上限に達しています)。")
    ),
    "campaign_outside_prefecture": (
        403, _l("キャンペーンの規則: 県外の企業のみ予約できます。")
    ),
    "campaign_slug_taken": (409, _l("このURL名は既に使われています。")),
    "campaign_core_day_outside": (422, _l("コア日は実施期間内の日付にしてください。")),
    "slot_outside_campaign": (422, _l("提供期間はキャンペーンの実施期間内にしてください。")),
    "slot_unit_not_allowed": (403, _l("自団体の施設か、施設運営者の施設の区画を選んでください。")),
    "slot_has_bookings": (409, _l("この枠には予約が%(bookings)d件あり、それに影響するため変更できません。")),
    # National campaigns and their programmes (services/national_campaigns.py).
    "programme_outside_national": (
        422, _l("実施期間は全国キャンペーンの期間(%(start)s〜%(end)s)内にしてください。")
    ),
    "national_category_invalid": (
        422, _l("参加区分にはコードと名前を入力してください(コードは重複できません)。")
    ),
    "national_programmes_outside": (
        409, _l("この期間の外になる地域プログラムがあります。先にプログラムの実施期間を変更してください。")
    ),
    "extra_not_offered": (422, _l("この貸出品はこの予約では選べません。")),
    "extra_too_many": (422, _l("貸出品は1予約あたり%(limit)d個までです。")),
    "extra_too_many.negative": (422, _l("貸出品の数は0以上にしてください。")),
    "extra_quantity_lent": (409, _l("貸し出し中の数(%(lent)d個)より少なくはできません。")),
    "extra_sold_out": (409, _l("貸出品の在庫が足りません(残り%(available)d個)。")),
    "extra_name_taken": (409, _l("同じ名前の貸出品があります。")),
    "extra_in_use": (409, _l("予約に使われている貸出品は削除できません。")),
    "capacity_conflict": (409, _l("既存の予約に影響するため変更できません。")),
    "whole_unit_capacity": (
        422, _l("部屋・一棟貸しは丸ごとの貸し出しです。その日の席数は0か1にしてください。")
    ),
    # Bookings (reservations.py)
    "whole_unit": (422, _l("この区画は1室(1棟)単位の予約です。席数は1にしてください。")),
    "too_many_attendees": (422, _l("参加者が多すぎます。この予約に招待できるのは%(limit)d人までです。")),
    "bad_email": (422, _l("無効なメールアドレスです。")),
    # Not a code of its own: the message of "bad_email" for a local part that is not
    # ASCII (booking/services/addresses.py).
    "email_not_ascii": (422, _l("メールアドレスの@より前には半角の英数字と記号だけが使えます。")),
    "bad_dates": (422, _l("日付を選んでください。")),
    "whole_stays": (422, _l("この区画は宿泊単位の予約です。チェックイン日と泊数で予約してください。")),
    "too_far_ahead": (422, _l("この区画の予約受付期間より先の日付です。")),
    "idempotency_mismatch": (422, _l("同じIdempotency-Keyで別の内容が送信されました。")),
    "not_checkin_time": (409, _l("今はチェックインできません。")),
    "bad_status": (409, _l("この予約の状態では操作できません。")),
    # A booking whose seats the unit's no-show rule gave back (services/no_shows.py).
    "released": (
        409, _l("開始から決められた時間内にチェックインがなかったため、この予約の席は解放されました。")
    ),
    "no_change": (422, _l("変更する内容がありません。")),
    "unknown_place": (422, _l("場所が見つかりません。")),
    # Postal codes (services/postal.py): not 7 digits; no address has it.
    "invalid_postal_code": (422, _l("郵便番号は7桁の数字で入力してください(例: 422-8035)。")),
    "unknown_postal_code": (422, _l("この郵便番号の住所が見つかりません。")),
    # The operator console (services/space_admin.py, closures.py, front_desk.py, photos.py).
    "not_found": (404, _l("見つかりません。")),
    # An invoice registration number (services/receipts.py): "T" and 13 digits, check digit.
    "invoice_registration_number": (
        422, _l("登録番号は「T」に続く13桁の数字で入力してください(チェックディジットが合いません)。")),
    "not_approved": (403, _l("サイト管理者が団体を承認するまで、この操作はできません。")),
    "owner_only": (403, _l("この操作は団体のオーナーだけが行えます。")),
    "has_bookings": (409, _l("予約があるため削除できません。非公開にしてください。")),
    "slug_taken": (422, _l("このURL名は使われています。")),
    "photo_not_image": (422, _l("JPEG・PNG・WebP の画像ファイルを選んでください。")),
    "photo_too_large": (413, _l("ファイルが大きすぎます。")),
    "photo_bad_name": (422, _l("ファイル名が正しくありません。")),
    "ambiguous_place": (422, _l("場所が複数見つかりました。選んでください。")),
    "search_too_long": (422, _l("検索できる期間は最長31日です。")),
    # E-mail verification (services/accounts.py) and company limits (services/limits.py).
    "email_unverified": (
        422, _l("参加者を招待するには、先にメールアドレスの確認を済ませてください"
                "(アカウントページから確認メールを再送できます)。")
    ),
    "verify_link_invalid": (400, _l("確認用リンクが正しくありません。")),
    "verify_link_expired": (
        400, _l("確認用リンクの有効期限(%(hours)d時間)が切れています。新しいリンクを送ってください。")
    ),
    "verify_link_other_account": (
        403, _l("この確認用リンクは別のアカウントのものです。そのアカウントでログインして開いてください。")
    ),
    "verify_mail_limit": (
        429, _l("確認メールは1日%(limit)d通までです。しばらくしてからもう一度お試しください。")
    ),
    "company_bookings_per_hour": (
        429, _l("1社あたりの予約は1時間に%(limit)d件までです。しばらくしてからお試しください。")
    ),
    "company_bookings_per_day": (
        429, _l("1社あたりの予約は24時間に%(limit)d件までです。しばらくしてからお試しください。")
    ),
    "company_invitations_per_day": (
        429, _l("1社あたりの招待メールは24時間に%(limit)d通まで(予約1件につき予約者と参加者1人ずつ)です。")
    ),
    # Accounts (services/accounts.py, services/privacy.py).
    "email_taken": (409, _l("このメールアドレスは既に登録されています。")),
    "weak_password": (422, _l("このパスワードはよく使われているか推測されやすいため使えません。")),
    "weak_password.too_short": (422, _l("パスワードは%(n)d文字以上にしてください。")),
    "weak_password.too_long": (422, _l("パスワードは%(n)d文字以内にしてください。")),
    "wrong_password": (422, _l("パスワードが正しくありません。")),
    "wrong_password.current": (422, _l("現在のパスワードが正しくありません。")),
    "sole_owner": (409, _l("他のメンバーがいる団体のオーナーは、先にオーナーを引き継いでください。")),
    # The cancellation policy (services/cancellation.py): a booking past its deadline
    # already is made only once the user has said they know.
    "late_unacknowledged": (
        422, _l("このご予約は取消期限を過ぎているため、予約後のキャンセルはできません。"
                "確認のチェックを入れてから予約してください。")
    ),
    # Campaign consent (services/campaign_management.set_consent).
    "consent_reason_required": (422, _l("お断りする理由を入力してください。")),
    "consent_reason_too_long": (422, _l("理由が長すぎます(%(max)d文字まで)。")),
    "consent_changed": (409, _l("この提供枠の状態が変わりました。最新の内容を確認してください。")),
    # The waitlist (services/waitlist.py).
    "waitlist_seats_free": (
        409, _l("その日時には空席があります。空き待ちではなく、このまま予約してください。")
    ),
    "waitlist_duplicate": (409, _l("この日時の空き待ちには既に登録しています。")),
    "waitlist_one_period": (
        422, _l("空き待ちは1回分(1日・1つの時間帯・1回の宿泊)ずつ登録してください。")
    ),
    "waitlist_not_offered": (409, _l("このご案内は受付を終了しています。")),
    "waitlist_offer_expired": (409, _l("ご案内の期限が過ぎたため、確定できませんでした。")),
    "waitlist_not_waiting": (409, _l("この空き待ちは既に終了しています。")),
    # Invitations and members (services/invitations.py, services/space_members.py).
    "invitation_invalid": (404, _l("この招待リンクは正しくありません。")),
    "invitation_expired": (
        410, _l("この招待の有効期限が切れています。招待した方に送り直してもらってください。")
    ),
    "invitation_revoked": (410, _l("この招待は取り消されました。")),
    "invitation_used": (410, _l("この招待は既に使われました。")),
    "invitation_other_account": (
        403, _l("この招待は%(email)s宛てです。そのアドレスのアカウントでログインして開いてください。")
    ),
    "invitation_has_account": (
        409, _l("このアドレスのアカウントがあります。ログインしてから招待リンクを開いてください。")
    ),
    "already_member": (409, _l("この方は既にこの団体のメンバーです。")),
    "second_company": (409, _l("この方は既に別の会社に所属しています。1人が所属できる会社は1社です。")),
    "last_owner": (
        409, _l("団体には少なくとも1人の管理者(オーナー)が必要です。先に別の方を管理者にしてください。")
    ),
    "member_changed": (409, _l("このメンバーの状態が変わりました。最新の内容を確認してください。")),
    "space_member_exists": (409, _l("既に会員に登録されています。")),
    "space_member_no_company": (
        422, _l("このアドレスの方は登録済みの会社に所属していません。"
                "会社ごとではなく個人として追加してください。")
    ),
}


# The field of a request a refusal concerns, when the code alone says it (a service
# may name another: DomainError(code, field=...)). booking.forms.show_error puts the
# message beside that field, or at the top of a form that has no such field.
FIELD_OF = {
    "bad_seats": "seats", "whole_unit": "seats", "not_enough_seats": "seats",
    "too_many_attendees": "attendees", "bad_email": "attendees", "email_unverified": "attendees",
    "bad_range": "end_time", "outside_hours": "start_time",
    "closed": "first_date", "in_past": "first_date", "lead_time": "first_date",
    "too_short": "last_date", "too_long": "last_date", "bad_dates": "first_date",
    "campaign_closed": "first_date", "too_far_ahead": "first_date", "whole_stays": "nights",
    "email_taken": "email", "weak_password": "password", "wrong_password": "password",
    "unknown_place": "near", "ambiguous_place": "near", "search_too_long": "end_date",
    "invalid_postal_code": "postal_code", "unknown_postal_code": "postal_code",
    "already_member": "email", "second_company": "email", "space_member_exists": "email",
    "space_member_no_company": "email",
}


class DomainError(Exception):
    """Raised by services; the edge shows it beside its field, at the top of the form,
    or as a problem document (booking.forms.show_error, the API's handler)."""

    def __init__(self, code: str, field: str | None = None, variant: str | None = None,
                 **extra) -> None:
        super().__init__(code)
        self.code = code
        self.field = field or FIELD_OF.get(code)
        # Another wording of the same refusal (MESSAGES["<code>.<variant>"]): the code,
        # which API clients rely on, stays the same.
        self.variant = variant
        self.extra = extra

    @property
    def status(self) -> int:
        return MESSAGES[self.code][0]

    @property
    def message(self) -> str:
        """The message, with the error's own figures in it where it names them
        (%(limit)d and the like, from the keywords the error was raised with)."""
        text = str(MESSAGES.get(f"{self.code}.{self.variant}", MESSAGES[self.code])[1])
        if "%(" in text:
            try:
                return text % self.extra
            except (KeyError, TypeError, ValueError):
                return text
        return text


# --------------------------------------------------------------------------- problem types
# Every API problem (RFC 9457) carries a stable `code` and a `type` URI per code, whose
# `title` is fixed and English (a short summary of the type, as RFC 9457 asks); the
# `detail` says this occurrence in the user's language.

# Problems of the request itself rather than of a rule: their titles are the HTTP
# status phrases.
GENERIC = {
    "bad_request": (400, "Bad Request"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "method_not_allowed": (405, "Method Not Allowed"),
    "payload_too_large": (413, "Content Too Large"),
    "unsupported_media_type": (415, "Unsupported Media Type"),
    "invalid_input": (422, "Unprocessable Content"),
    "rate_limited": (429, "Too Many Requests"),
    "internal_error": (500, "Internal Server Error"),
    "service_unavailable": (503, "Service Unavailable"),
}
# The code of an HTTP error raised without one (werkzeug's exceptions, Flask-Limiter's 429).
CODE_OF_STATUS = {status: code for code, (status, _title) in GENERIC.items()} | {404: "not_found"}

# Titles that the code, read as words, would say less well.
TITLES = {
    "not_found": "Not Found",
    "bad_credentials": "Wrong e-mail address or password",
    "busy": "Busy: try again",
    "closed": "Closed then",
    "in_past": "In the past",
    "lead_time": "Too late to book",
    "bad_range": "End not after start",
    "bad_seats": "Invalid number of seats",
    "unavailable": "Not open for booking",
    "not_yours": "Booking not found",
    "no_company": "Company registration needed",
    "idempotency_mismatch": "Idempotency-Key reused with another body",
    "bad_email": "Invalid e-mail address",
    "bad_dates": "No valid dates",
    "whole_unit": "Booked whole: one seat",
    "whole_stays": "Booked by the night",
    "email_unverified": "E-mail address not verified",
    "extra_sold_out": "Extra sold out",
    "campaign_outside_prefecture": "Campaign for companies from other prefectures",
}
# A failed log-in through the API: 401 with its own type.
GENERIC_RULES = {"bad_credentials": 401}


_codes: tuple[int, dict[str, int]] = (-1, {})


def problem_codes() -> dict[str, int]:
    """Every problem code the API may answer with, and its HTTP status (made once, anew
    only when a module has added messages since)."""
    global _codes
    if _codes[0] != len(MESSAGES):
        codes = {code: status for code, (status, _message) in MESSAGES.items()
                 if "." not in code}
        codes.update({code: status for code, (status, _title) in GENERIC.items()})
        codes.update(GENERIC_RULES)
        _codes = (len(MESSAGES), dict(sorted(codes.items())))
    return _codes[1]


def problem_title(code: str) -> str:
    """The fixed English title of a problem code."""
    if code in GENERIC:
        return GENERIC[code][1]
    return TITLES.get(code) or code.replace("_", " ").capitalize()
