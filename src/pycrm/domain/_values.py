"""Value objects: EmailAddress, PhoneNumber, Money, Address. Immutable, validated, comparable."""

from __future__ import annotations

import contextvars
import functools
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import email_validator
import phonenumbers

from pycrm.domain._checks import MAX_NAME, text
from pycrm.domain._iso4217 import MINOR_UNITS
from pycrm.errors import FieldError, ValidationError

__all__ = ["Address", "EmailAddress", "Money", "OrderLine", "PhoneNumber", "current_region", "default_region"]

#: ISO 3166 alpha-2 regions that phonenumbers knows, used to check ``country`` fields.
REGIONS: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)

_REGION: contextvars.ContextVar[str | None] = contextvars.ContextVar("pycrm_default_region", default=None)


def current_region() -> str | None:
    """The region used for local phone numbers right now (set by ``crm.session()``)."""
    return _REGION.get()


@contextmanager
def default_region(region: str | None) -> Iterator[None]:
    """Parse local phone numbers as numbers of ``region`` inside the block.

    >>> with default_region("CN"):
    ...     str(PhoneNumber.parse("138 0013 8000"))
    '+8613800138000'
    """
    token = _REGION.set(check_region(region, "default_region") if region else None)
    try:
        yield
    finally:
        _REGION.reset(token)


def check_region(value: Any, field: str) -> str:
    if not isinstance(value, str) or value.upper() not in REGIONS:
        raise ValidationError([FieldError(field, "invalid_country", f"not an ISO 3166 alpha-2 country code: {_short(value)}")])
    return value.upper()


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError([FieldError(field, "type", f"expected text, got {type(value).__name__}")])
    return value


#: What a stored phone number looks like: E.164, or (an encrypted one) a blind index and an envelope.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
#: What a stored e-mail address looks like at the least: one ``@`` between non-empty parts, no spaces.
_EMAIL_SHAPE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_SEALED = "bi:"


def _short(value: Any) -> str:
    """A bad value as an error quotes it: at most 40 characters of its repr."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _stored_email(_: Any, __: Any, value: Any) -> None:
    if type(value) is not str or not (_EMAIL_SHAPE.fullmatch(value) or value.startswith(_SEALED)):
        raise ValidationError(
            [FieldError("email", "invalid_email", f"{_short(value)} is not an e-mail address (EmailAddress.parse checks one)")]
        )


def _stored_phone(_: Any, __: Any, value: Any) -> None:
    if type(value) is not str or not (_E164.fullmatch(value) or value.startswith(_SEALED)):
        raise ValidationError(
            [
                FieldError(
                    "phone", "invalid_phone", f"{_short(value)} is not a phone number in E.164 form (PhoneNumber.parse reads one)"
                )
            ]
        )


@attrs.frozen(order=True)
class EmailAddress:
    """A syntactically valid e-mail address (no network look-ups), stored lower-cased and trimmed.

    >>> EmailAddress.parse("  Li.Lei@Example.COM ")
    EmailAddress(value='li.lei@example.com')
    >>> str(EmailAddress.parse("a@b.cn"))
    'a@b.cn'
    """

    value: str = attrs.field(validator=_stored_email)

    @classmethod
    def parse(cls, text: Any, field: str = "email") -> EmailAddress:
        if isinstance(text, EmailAddress):
            return text
        raw = unicodedata.normalize("NFKC", _text(text, field)).strip()
        try:
            info = email_validator.validate_email(raw, check_deliverability=False)
        except (email_validator.EmailNotValidError, ValueError, UnicodeError) as exc:
            shown = raw if len(raw) <= 80 else raw[:77] + "..."
            raise ValidationError(
                [FieldError(field, "invalid_email", f"{shown!r} is not a valid e-mail address ({exc})")]
            ) from None
        return cls(info.normalized.lower())

    def __str__(self) -> str:
        return self.value


def memoize_email_domains(size: int = 4096) -> bool:
    """Make this process remember email-validator's check of each domain name.

    For a process that only validates, such as an import's worker. Checking the domain is most of the
    cost of checking an address, and a file has few distinct domains. The check depends on the domain
    alone: no DNS, since deliverability is not checked. So a remembered answer is the one a new check
    would give, and a domain that fails is checked again, with the same message. The change lasts as long
    as the process. Returns False, changing nothing, when this email-validator keeps the check elsewhere
    or it is already remembered.
    """
    module = sys.modules.get("email_validator.validate_email")
    check = getattr(module, "validate_email_domain_name", None)
    if module is None or not callable(check) or hasattr(check, "cache_info"):
        return False
    module.validate_email_domain_name = functools.lru_cache(maxsize=size)(check)  # type: ignore[attr-defined]
    return True


_PREFIX_00 = ("00",)


@attrs.frozen(order=True)
class PhoneNumber:
    """A valid phone number in E.164 form.

    Local numbers need a region: the customer's ``country`` or the store's ``default_region``.
    Full-width digits and ``0086`` / ``+86`` prefixes are accepted.

    >>> PhoneNumber.parse("１３８-0013-8000", "CN").e164
    '+8613800138000'
    >>> str(PhoneNumber.parse("0086 138 0013 8000"))
    '+8613800138000'
    """

    e164: str = attrs.field(validator=_stored_phone)

    @classmethod
    def parse(cls, text: Any, region: str | None = None, field: str = "phone") -> PhoneNumber:
        if isinstance(text, PhoneNumber):
            return text
        raw = unicodedata.normalize("NFKC", _text(text, field)).strip()
        if len(raw) > 64:
            raise ValidationError([FieldError(field, "invalid_phone", f"{raw[:40]!r}... is too long for a phone number")])
        compact = raw.lstrip(" (")  # "(+86) 138..." and "(0086) 138..." carry a country code too
        if compact.startswith("00"):
            compact = "+" + compact[2:]
        if region is None:
            region = _REGION.get()
        if not compact.startswith("+") and region is None:
            raise ValidationError(
                [
                    FieldError(
                        field,
                        "region_required",
                        f"{_short(raw)} has no country code; set the customer's country or the store's default_region",
                    )
                ]
            )
        try:
            num = phonenumbers.parse(compact, None if compact.startswith("+") else region)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError([FieldError(field, "invalid_phone", f"{_short(raw)} is not a phone number ({exc})")]) from None
        if not phonenumbers.is_valid_number(num):
            raise ValidationError([FieldError(field, "invalid_phone", f"{_short(raw)} is not a valid phone number")])
        return cls(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164))

    @property
    def region(self) -> str | None:
        """ISO 3166 region of the number, when it has one."""
        return phonenumbers.region_code_for_number(phonenumbers.parse(self.e164, None))

    def __str__(self) -> str:
        return self.e164


def _to_decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ValidationError(
            [FieldError(field, "type", f"use Decimal, int or a decimal string, not {type(value).__name__} ({_short(value)})")]
        )
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, str):
        try:
            dec = Decimal(unicodedata.normalize("NFKC", value).strip().replace(",", ""))
        except InvalidOperation:
            raise ValidationError([FieldError(field, "invalid_amount", f"{value[:40]!r} is not a number")]) from None
    else:
        raise ValidationError([FieldError(field, "type", f"expected a decimal amount, got {type(value).__name__}")])
    if not dec.is_finite():
        raise ValidationError([FieldError(field, "invalid_amount", f"{_short(value)} is not a finite amount")])
    return dec


#: Money keeps at most this many decimal places (stored exactly as integers of 1/10,000 units).
MONEY_PLACES = 4
MONEY_LIMIT = Decimal(10) ** 14


def _to_amount(value: Any, field: str) -> Decimal:
    dec = _to_decimal(value, field)
    if dec.as_tuple().exponent < -MONEY_PLACES and dec != dec.quantize(Decimal(1).scaleb(-MONEY_PLACES)):  # type: ignore[operator]
        raise ValidationError([FieldError(field, "too_precise", f"{_short(value)} has more than {MONEY_PLACES} decimal places")])
    if abs(dec) >= MONEY_LIMIT:
        raise ValidationError([FieldError(field, "out_of_range", f"{_short(value)} is too large (limit 10^14)")])
    return dec


def _check_currency(value: Any, field: str) -> str:
    if not isinstance(value, str) or value.upper() not in MINOR_UNITS:
        raise ValidationError([FieldError(field, "invalid_currency", f"not an ISO 4217 currency: {_short(value)}")])
    return value.upper()


def _amount_field(value: Any) -> Decimal:
    return _to_amount(value, "amount")


def _currency_field(value: Any) -> str:
    return _check_currency(value, "currency")


@attrs.frozen(order=True)
class Money:
    """An amount in one currency: a Decimal and an ISO 4217 code; floats are refused.

    >>> Money("1234.50", "cny")
    Money(amount=Decimal('1234.50'), currency='CNY')
    >>> Money(10, "USD") + Money("0.25", "USD")
    Money(amount=Decimal('10.25'), currency='USD')
    """

    amount: Decimal = attrs.field(converter=_amount_field)
    currency: str = attrs.field(default="CNY", converter=_currency_field)

    @classmethod
    def parse(cls, amount: Any, currency: Any = "CNY", field: str = "amount") -> Money:
        if isinstance(amount, Money):
            return amount
        errors: list[FieldError] = []
        dec = cur = None
        try:
            dec = _to_amount(amount, field)
        except ValidationError as exc:
            errors += exc.errors
        try:
            cur = _check_currency(currency, f"{field}.currency")
        except ValidationError as exc:
            errors += exc.errors
        if errors:
            raise ValidationError(errors)
        return cls(dec, cur)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValidationError(
                [
                    FieldError(
                        "currency",
                        "currency_mismatch",
                        f"cannot combine {self.currency} with {getattr(other, 'currency', other)!r}",
                    )
                ]
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        """Scale by a factor (a probability, an exchange rate), rounded half-even to 4 places."""
        exact = self.amount * _to_decimal(factor, "factor")
        return Money(exact.quantize(Decimal(1).scaleb(-MONEY_PLACES)), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


#: The most units one order line may hold (a whole number above zero).
MAX_QUANTITY = 10**9


@attrs.frozen
class OrderLine:
    """One line of an order: ``quantity`` (a whole number above zero) of the product ``product_id`` at
    ``unit_price`` each, less ``discount`` (an amount in the unit price's currency, off the line, 0 by
    default, never more than the line). ``total`` is what the line adds to the order's amount.

    Quantities are whole units: sell fractions in a smaller unit (grams, minutes), as the product's ``unit``
    says.

    >>> line = OrderLine("p-tea", 3, Money("12.50", "EUR"), discount="2.50")
    >>> line.total, line.currency
    (Money(amount=Decimal('35.00'), currency='EUR'), 'EUR')
    >>> try:
    ...     OrderLine("p-tea", 0, Money("1", "EUR"))
    ... except ValidationError as exc:
    ...     print(exc.errors[0].field, exc.errors[0].code)
    quantity out_of_range
    """

    product_id: str
    quantity: int
    unit_price: Money
    discount: Decimal = Decimal(0)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        pid = self.product_id
        if not isinstance(pid, str) or not pid.strip() or len(pid) > 64 or "\x00" in pid:
            errors.append(FieldError("product_id", "invalid_id", f"not a product id: {_short(pid)}"))
        q = self.quantity
        if not isinstance(q, int) or isinstance(q, bool):
            errors.append(FieldError("quantity", "type", f"expected a whole number, got {type(q).__name__}"))
        elif not 0 < q <= MAX_QUANTITY:
            errors.append(FieldError("quantity", "out_of_range", f"{q} is not a quantity above 0 (at most {MAX_QUANTITY})"))
        price = self.unit_price
        if not isinstance(price, Money):
            errors.append(FieldError("unit_price", "type", f"expected Money(amount, currency), got {type(price).__name__}"))
        elif price.amount < 0:
            errors.append(FieldError("unit_price", "negative", f"{price} is negative"))
        try:
            discount = _to_amount(self.discount, "discount")
        except ValidationError as exc:
            errors += exc.errors
        else:
            object.__setattr__(self, "discount", discount)
            if discount < 0:
                errors.append(FieldError("discount", "negative", f"{discount} is negative (a discount is taken off)"))
            elif not errors and discount > price.amount * q:
                errors.append(FieldError("discount", "out_of_range", f"{discount} is more than the line ({price.amount * q})"))
        if errors:
            raise ValidationError(errors)

    @property
    def currency(self) -> str:
        return self.unit_price.currency

    @property
    def total(self) -> Money:
        """``quantity`` x ``unit_price`` - ``discount``, exact."""
        return Money(self.unit_price.amount * self.quantity - self.discount, self.unit_price.currency)

    @classmethod
    def parse(cls, data: Any, field: str = "line", currency: str | None = None) -> OrderLine:
        """An OrderLine from itself or a mapping ``{"product_id", "quantity", "unit_price", "discount",
        "currency"}`` (``unit_price`` a Money, a ``{"amount", "currency"}`` mapping or an amount, whose
        currency is ``currency``, else the order's ``currency``); problems are named under ``field``."""
        if isinstance(data, OrderLine):  # checked again: one decoded from trusted data (a change to apply) too
            try:
                data.__attrs_post_init__()
            except ValidationError as exc:
                raise exc.prefixed(field) from None
            return data
        if not isinstance(data, Mapping):
            raise ValidationError([FieldError(field, "type", f"expected an OrderLine or a mapping, got {type(data).__name__}")])
        known = ("product_id", "quantity", "unit_price", "discount", "currency")
        errors = [FieldError(f"{field}.{k}", "unknown_field", "no such order line field") for k in data if k not in known]
        errors += [FieldError(f"{field}.{k}", "required", "is required") for k in known[:3] if k not in data]
        if errors:
            raise ValidationError(errors)
        price: Any = data["unit_price"]
        cur = data.get("currency", currency if currency is not None else "CNY")
        try:
            if isinstance(price, Mapping):
                price = Money.parse(price.get("amount"), price.get("currency", cur), "unit_price")
            elif not isinstance(price, Money):
                price = Money.parse(price, cur, "unit_price")
            if "currency" in data and _check_currency(data["currency"], "currency") != price.currency:
                raise ValidationError(
                    [
                        FieldError(
                            "currency",
                            "currency_mismatch",
                            f"{data['currency']!r} differs from the unit price's {price.currency}",
                        )
                    ]
                )
            quantity = data["quantity"]
            if isinstance(quantity, str) and quantity.strip().isdigit():
                quantity = int(quantity.strip())
            return cls(data["product_id"], quantity, price, data.get("discount", Decimal(0)) or Decimal(0))
        except ValidationError as exc:
            raise exc.prefixed(field) from None

    def to_mapping(self) -> dict[str, Any]:
        """The flat JSON-safe form (amounts as exact text), as stored, exported and imported."""
        return {
            "product_id": self.product_id,
            "quantity": self.quantity,
            "unit_price": str(self.unit_price.amount),
            "discount": str(self.discount),
            "currency": self.unit_price.currency,
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> OrderLine:
        """From :meth:`to_mapping`'s form, trusted (stored rows, snapshots): not checked again."""
        inst = object.__new__(cls)
        set_ = object.__setattr__
        set_(inst, "product_id", data["product_id"])
        set_(inst, "quantity", int(data["quantity"]))
        set_(inst, "unit_price", Money(Decimal(data["unit_price"]), data["currency"]))
        set_(inst, "discount", Decimal(data.get("discount") or 0))
        return inst


def _opt_text(value: Any) -> str | None:
    if value is None:
        return None
    return text(value, "", max_len=MAX_NAME).strip() or None


def _opt_country(value: Any) -> str | None:
    return None if value in (None, "") else check_region(value, "country")


@attrs.frozen
class Address:
    """A postal address; ``country`` is ISO 3166 alpha-2 when given.

    >>> Address(street="1 Main St", city="Shanghai", country="cn").country
    'CN'
    """

    street: str | None = attrs.field(default=None, converter=_opt_text)
    city: str | None = attrs.field(default=None, converter=_opt_text)
    postcode: str | None = attrs.field(default=None, converter=_opt_text)
    region: str | None = attrs.field(default=None, converter=_opt_text)
    country: str | None = attrs.field(default=None, converter=_opt_country)

    @classmethod
    def from_mapping(cls, data: Any, field: str = "address") -> Address:
        if isinstance(data, Address):
            return data
        if not isinstance(data, dict):
            raise ValidationError([FieldError(field, "type", f"expected an Address or a mapping, got {type(data).__name__}")])
        fields = attrs.fields(cls)
        names = [f.name for f in fields]
        errors = [FieldError(f"{field}.{k}", "unknown_field", "no such address field") for k in data if k not in names]
        if not errors:
            try:
                return cls(**data)
            except ValidationError:
                pass  # each bad value is named below
        for f in fields:
            if f.name in data:
                try:
                    f.converter(data[f.name])
                except ValidationError as exc:
                    errors += [FieldError(f"{field}.{f.name}", e.code, e.message) for e in exc.errors]
        raise ValidationError(errors)

    def to_mapping(self) -> dict[str, str | None]:
        return attrs.asdict(self)
