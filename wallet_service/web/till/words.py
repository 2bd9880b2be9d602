"""The till's words in Russian and English: the page renders them, and its script reads
them from the page (so the shell cached offline speaks the device's language too)."""

from __future__ import annotations

from ...errors import InsufficientBalance
from ...errors import PermissionDenied
from ...errors import ResourceConflict
from ...errors import ResourceNotFound
from ...errors import WalletError

WORDS: dict[str, dict[str, str]] = {
    "title": {"ru": "Касса", "en": "Till"},
    "not_registered": {"ru": "Это устройство ещё не касса. Владелец или управляющий "
                             "регистрирует его один раз.",
                       "en": "This device is not a till yet. The owner or a manager "
                             "registers it once."},
    "email": {"ru": "Эл. почта", "en": "E-mail"},
    "password": {"ru": "Пароль", "en": "Password"},
    "location": {"ru": "Магазин (номер точки)", "en": "Store (location id)"},
    "device_name": {"ru": "Название кассы", "en": "Till name"},
    "register": {"ru": "Сделать кассой", "en": "Register as a till"},
    "who": {"ru": "Кто за кассой?", "en": "Who is at the till?"},
    "pin": {"ru": "PIN-код", "en": "PIN"},
    "sign_in": {"ru": "Войти", "en": "Sign in"},
    "sign_out": {"ru": "Сменить сотрудника", "en": "Switch staff"},
    "scan": {"ru": "Наведите камеру на карту", "en": "Point the camera at the card"},
    "code": {"ru": "Номер карты или телефон", "en": "Card number or phone"},
    "find": {"ru": "Найти", "en": "Find"},
    "no_camera": {"ru": "Камера недоступна — введите номер", "en":
                  "No camera — type the number"},
    "balance": {"ru": "Баланс", "en": "Balance"},
    "tier": {"ru": "Уровень", "en": "Tier"},
    "rewards_ready": {"ru": "Награды", "en": "Rewards"},
    "coupons_ready": {"ru": "Купоны", "en": "Coupons"},
    "last": {"ru": "Последние операции", "en": "Last transactions"},
    "purchase": {"ru": "Покупка", "en": "Purchase"},
    "amount": {"ru": "Сумма покупки (до скидки)", "en": "Purchase amount (before discount)"},
    "will_earn": {"ru": "Начислится", "en": "Will earn"},
    "discount": {"ru": "Скидка", "en": "Discount"},
    "stamps_add": {"ru": "Штампы", "en": "Stamps"},
    "add": {"ru": "Добавить", "en": "Add"},
    "confirm": {"ru": "Подтвердить", "en": "Confirm"},
    "redeem": {"ru": "Выдать", "en": "Redeem"},
    "use": {"ru": "Погасить", "en": "Use"},
    "spend": {"ru": "Списать", "en": "Spend"},
    "spend_amount": {"ru": "Списать с карты", "en": "Take from the card"},
    "refund": {"ru": "Возврат", "en": "Refund"},
    "undo": {"ru": "Отменить", "en": "Undo"},
    "sending": {"ru": "Отправляется…", "en": "Sending…"},
    "done": {"ru": "Готово", "en": "Done"},
    "not_sent": {"ru": "Не отправлено — повторите", "en": "Not sent — retry"},
    "retry": {"ru": "Повторить", "en": "Retry"},
    "offline": {"ru": "Нет связи: ничего не отправлено", "en": "Offline: nothing was sent"},
    "new_balance": {"ru": "Новый баланс", "en": "New balance"},
    "next_customer": {"ru": "Следующий клиент", "en": "Next customer"},
    "closed": {"ru": "Карта закрыта", "en": "The card is closed"},
    "not_found": {"ru": "Карта не найдена", "en": "No such card"},
    "locked": {"ru": "PIN заблокирован до {time}", "en": "PIN locked until {time}"},
    "wrong_pin": {"ru": "Неверный PIN, осталось попыток: {n}",
                  "en": "Wrong PIN, {n} tries left"},
    "none": {"ru": "нет", "en": "none"},
    "back": {"ru": "Назад", "en": "Back"},
    "language": {"ru": "English", "en": "Русский"},
    "earn": {"ru": "начисление", "en": "earn"},
    "redeem_type": {"ru": "списание", "en": "redeem"},
    "refund_type": {"ru": "возврат", "en": "refund"},
    "reward_type": {"ru": "награда", "en": "reward"},
    "coupon_type": {"ru": "купон", "en": "coupon"},
}


def words(lang: str) -> dict[str, str]:
    """Every word of the till in ``lang``."""
    return {key: texts.get(lang) or texts["en"] for key, texts in WORDS.items()}


#: What the till says when the service refuses: keyed by what the problem names (the
#: limit, the field, the kind of refusal), never by the service's English text.
ERRORS: dict[str, dict[str, str]] = {
    "limit_points_per_transaction": {
        "ru": "Лимит: не больше {cap} баллов за одну операцию (здесь {asked})",
        "en": "Limit: at most {cap} points in one transaction (this gives {asked})"},
    "limit_stamps_per_transaction": {
        "ru": "Лимит: не больше {cap} штампов за одну операцию (здесь {asked})",
        "en": "Limit: at most {cap} stamps in one transaction (this gives {asked})"},
    "limit_points_per_customer_day": {
        "ru": "Лимит: не больше {cap} баллов одному клиенту в день (осталось {left})",
        "en": "Limit: at most {cap} points for one customer a day ({left} left)"},
    "limit_stamps_per_customer_day": {
        "ru": "Лимит: не больше {cap} штампов одному клиенту в день (осталось {left})",
        "en": "Limit: at most {cap} stamps for one customer a day ({left} left)"},
    "limit_points_per_staff_day": {
        "ru": "Лимит: не больше {cap} баллов от сотрудника в день (осталось {left})",
        "en": "Limit: at most {cap} points by one staff member a day ({left} left)"},
    "limit_stamps_per_staff_day": {
        "ru": "Лимит: не больше {cap} штампов от сотрудника в день (осталось {left})",
        "en": "Limit: at most {cap} stamps by one staff member a day ({left} left)"},
    "limit_stamp_window": {
        "ru": "Лимит штампов программы: сейчас можно добавить ещё {allowed}",
        "en": "The program's stamp limit: {allowed} more can be added now"},
    "closed": WORDS["closed"],
    "not_found": WORDS["not_found"],
    "balance": {"ru": "Недостаточно баллов на карте", "en": "Not enough on the card"},
    "reward_id": {"ru": "Этой награды нет", "en": "No such reward"},
    "coupon_id": {"ru": "Купон недействителен или уже использован",
                  "en": "The coupon is not valid now or used already"},
    "entry_id": {"ru": "Эту операцию здесь не отменить: отменяет только тот, кто её провёл, "
                       "в течение 5 минут и один раз. Иначе — возврат в консоли.",
                 "en": "This can't be undone here: only who posted it, within 5 minutes, "
                       "once. Otherwise refund it in the console."},
    "original_id": {"ru": "Эту покупку нельзя вернуть", "en": "This purchase can't be refunded"},
    "amount": {"ru": "Проверьте сумму", "en": "Check the amount"},
    "purchase_amount": {"ru": "Укажите сумму покупки", "en": "Give the purchase amount"},
    "count": {"ru": "Проверьте число штампов", "en": "Check the number of stamps"},
    "points": {"ru": "Проверьте число баллов", "en": "Check the points"},
    "forbidden": {"ru": "Вашей роли это не разрешено", "en": "Your role may not do this"},
    "too_many": {"ru": "Слишком много попыток; подождите {retry_after} с",
                 "en": "Too many attempts; wait {retry_after} s"},
    "device": {"ru": WORDS["not_registered"]["ru"], "en": WORDS["not_registered"]["en"]},
    "pin": {"ru": "Войдите своим PIN-кодом", "en": "Sign in with your PIN"},
    "csrf": {"ru": "Обновите страницу и повторите", "en": "Reload the page and retry"},
    "email": {"ru": "Неверная почта или пароль, или нет прав регистрировать кассу",
              "en": "Wrong e-mail or password, or no right to register a till"},
    "location_id": {"ru": "Нет магазина с таким номером", "en": "No store with this id"},
}


def error_text(lang: str, exc: WalletError) -> str | None:
    """The till's words for the service's refusal ``exc``, or None to show its own text."""
    extra, field = exc.extra, exc.field
    if isinstance(exc, InsufficientBalance):
        key = "balance"
    elif "limit" in extra:
        key = f"limit_{extra['limit']}"
    elif field == "X-CSRF-Token":
        key = "csrf"
    elif "retry_after" in extra:
        key = "too_many"
    elif isinstance(exc, ResourceConflict) and field == "member_id":
        key = "closed"
    elif isinstance(exc, ResourceNotFound) and field in ("code", "member_id"):
        key = "not_found"
    elif isinstance(exc, PermissionDenied) and field != "email":
        key = "forbidden"
    elif field in ERRORS:
        key = field
    else:
        return None
    texts = ERRORS.get(key)
    if texts is None:
        return None
    values = {"cap": "", "asked": "", "left": "", "allowed": "", "retry_after": "", **extra}
    try:
        return (texts.get(lang) or texts["en"]).format(**values)
    except (KeyError, IndexError, ValueError):
        return None
