"""The offer catalogue: M offers built on the driver (it is small) from `np.random.default_rng`.

Offers come in product lines (plan type x payment type x family flag) so that every customer
segment finds several plausible offers at every data level. Within a line the data allowance
climbs through the tiers, voice follows data, and the price rises with the allowances plus a
premium for 5G, premium and business plans and family bundles.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from telcorec.core.columns import Col
from telcorec.synthetic.rand import Salt

PLAN_TYPES = ("residential", "business", "premium")
PAYMENT_TYPES = ("prepaid", "postpaid")
NETWORKS = ("4G", "5G")
DATA_TIERS_GB = (1, 3, 5, 10, 20, 30, 50, 100, 500)  # 500 is sold as "Unlimited"
VOICE_TIERS_MIN = (100, 300, 600, 1000, 3000)
SMS_TIERS = (50, 200, 1000, 5000)
UNLIMITED_GB = 500

# (plan_type, payment_type, family, share of the catalogue, lowest and highest data tier index)
_LINES = (
    ("residential", "prepaid", False, 0.22, 0, 6),
    ("residential", "postpaid", False, 0.22, 1, 8),
    ("residential", "postpaid", True, 0.14, 3, 8),
    ("business", "postpaid", False, 0.18, 1, 8),
    ("business", "prepaid", False, 0.04, 0, 4),
    ("premium", "postpaid", False, 0.16, 4, 8),
    ("premium", "prepaid", False, 0.04, 4, 7),
)
_PREMIUM_EUR = {"5G": 5.0, "premium": 9.0, "business": 6.0, "family": 12.0}


def _line_sizes(m: int) -> list[int]:
    """Split m offers over the product lines by share (largest remainder), each line >= 1."""
    shares = np.array([line[3] for line in _LINES])
    exact = shares / shares.sum() * m
    sizes = np.maximum(np.floor(exact).astype(int), 1)
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if sizes.sum() >= m:
            break
        sizes[i] += 1
    while sizes.sum() > m:
        sizes[int(np.argmax(sizes))] -= 1
    return sizes.tolist()


def _voice_tiers(rng: np.random.Generator, data_pos: float, boost: float, count: int) -> np.ndarray:
    """`count` voice tier indices, distinct while possible, centred on the data position."""
    centre = data_pos * 3.5 + boost
    weights = np.exp(-0.5 * np.square((np.arange(len(VOICE_TIERS_MIN)) - centre) / 1.2))
    replace = count > len(VOICE_TIERS_MIN)
    return rng.choice(len(VOICE_TIERS_MIN), count, replace=replace, p=weights / weights.sum())


def _line_offers(rng: np.random.Generator, line: tuple, n: int) -> pd.DataFrame:
    """n offers of one product line: data tiers spread evenly over the line's range."""
    plan_type, payment, family, _, lo, hi = line
    data_idx = lo + (np.arange(n) * (hi - lo + 1)) // n
    boost = 1.0 if plan_type == "business" else 0.0
    voice_idx = np.empty(n, dtype=int)
    for tier in np.unique(data_idx):  # at most 9 tiers
        rows = np.flatnonzero(data_idx == tier)
        voice_idx[rows] = _voice_tiers(rng, (tier - lo) / max(hi - lo, 1), boost, rows.size)
    position = (data_idx - lo) / max(hi - lo, 1)
    sms_idx = np.clip(np.rint(position * 2.0 + rng.normal(0, 0.8, n)), 0, len(SMS_TIERS) - 1)
    data_gb = np.asarray(DATA_TIERS_GB, dtype=float)[data_idx]
    p_5g = np.full(n, 0.9) if plan_type == "premium" else np.where(data_gb >= 20, 0.7, 0.15)
    months = np.zeros(n, dtype=int) if payment == "prepaid" else rng.choice([12, 24], n)
    return pd.DataFrame({
        Col.PLAN_TYPE: plan_type, Col.PAYMENT_TYPE: payment, Col.FAMILY: family,
        Col.DATA_GB: data_gb, Col.VOICE_MIN: np.asarray(VOICE_TIERS_MIN, dtype=float)[voice_idx],
        Col.SMS: np.asarray(SMS_TIERS)[sms_idx.astype(int)],
        Col.NETWORK: np.where(rng.random(n) < p_5g, "5G", "4G"), Col.CONTRACT_MONTHS: months,
    })


def _price(rng: np.random.Generator, offers: pd.DataFrame) -> np.ndarray:
    base = (4.0 + 6.0 * np.log1p(offers[Col.DATA_GB]) + 1.5 * np.log1p(offers[Col.VOICE_MIN] / 100)
            + 0.8 * np.log1p(offers[Col.SMS] / 50))
    base = base + _PREMIUM_EUR["5G"] * (offers[Col.NETWORK] == "5G")
    base = base + _PREMIUM_EUR["premium"] * (offers[Col.PLAN_TYPE] == "premium")
    base = base + _PREMIUM_EUR["business"] * (offers[Col.PLAN_TYPE] == "business")
    base = base + _PREMIUM_EUR["family"] * offers[Col.FAMILY]
    base = base - 2.0 * (offers[Col.CONTRACT_MONTHS] == 24)
    noisy = base.to_numpy() * np.exp(rng.normal(0.0, 0.08, len(offers)))
    return np.floor(noisy) + 0.99


def _names(offers: pd.DataFrame) -> list[str]:
    names, seen = [], {}
    for row in offers.itertuples(index=False):  # M rows on the driver
        kind = "Family" if getattr(row, Col.FAMILY) else getattr(row, Col.PLAN_TYPE).capitalize()
        gb = getattr(row, Col.DATA_GB)
        data = "Unlimited" if gb >= UNLIMITED_GB else f"{gb:g}GB"
        months = getattr(row, Col.CONTRACT_MONTHS)
        term = "Prepaid" if months == 0 else f"{months}m"
        voice = f"{getattr(row, Col.VOICE_MIN):g}min"
        name = f"{kind} {getattr(row, Col.NETWORK)} {data} {voice} {term}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} v{seen[name]}")
    return names


def offer_ids(m: int) -> np.ndarray:
    """OFR0001 .. for catalogue rows 0 .. m-1."""
    return np.array([f"OFR{i + 1:04d}" for i in range(m)], dtype=object)


def build_catalogue(m: int, seed: int) -> pd.DataFrame:
    """The clean catalogue of m offers (CATALOGUE columns), deterministic in (m, seed)."""
    if not 1 <= m < 9999:
        raise ValueError(f"generator.offers={m}: must be below 9999 (offer ids are OFR0001..)")
    rng = np.random.default_rng([seed & ((1 << 63) - 1), Salt.CATALOGUE])
    parts = [_line_offers(rng, line, n) for line, n in zip(_LINES, _line_sizes(m)) if n > 0]
    offers = pd.concat(parts, ignore_index=True)
    offers[Col.PRICE] = _price(rng, offers)
    offers[Col.OFFER_ID] = offer_ids(m)
    offers[Col.OFFER_NAME] = _names(offers)
    return offers
