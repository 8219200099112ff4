"""Money as Japanese law asks it to be shown (総額表示): every price tax-included.

Prices are stored as the amounts a customer pays, consumption tax included, as Japanese
facilities list them. The tax inside an amount is worked out once per amount and rounded
down, as the invoice rules (インボイス制度) allow for one rounding per rate.
"""

from __future__ import annotations

# The standard consumption tax rate (%). Facility use has no reduced rate.
CONSUMPTION_TAX_PERCENT = 10


def tax_included_in(amount: int, percent: int = CONSUMPTION_TAX_PERCENT) -> int:
    """The consumption tax inside a tax-included amount, rounded down (¥1,100 → ¥100)."""
    return amount * percent // (100 + percent)
