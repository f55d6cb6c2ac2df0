"""Cold start: subscribers the model knows little about are ranked by content rules first.

A subscriber's route depends on tenure (days since signup, `tenure_days`):
- new (<= cold_start.new_days, default 7): content rules only;
- warm (<= cold_start.warm_days, default 30): warm_content_weight (0.7) content rules +
  the rest (0.3) the model's scores, min-max normalised per subscriber to the same 0..1 scale;
- established: the model alone. A subscriber of unknown tenure is treated as established: the
  hybrid model still scores them from their features.

The content rule score of an offer for a subscriber is in 0..1 (weights in cold_start.content):
- segment fit (0.4): half for a plan type the subscriber's segment buys
  (cold_start.segment_plan_types), half for the subscriber's payment type (prepaid/postpaid);
- data fit (0.3): exp(-|ln((allowance + 1) / (headroom x monthly GB + 1))|): 1 when the plan's
  data matches use plus headroom, falling with the log-ratio either way (too small or too big);
- price fit (0.3): 1 - |value tier - price tier| / 3, the subscriber's value quartile (bronze ..
  platinum) against the offer's price quartile (budget .. luxury).
A value the data lacks scores 0.5 (neither for nor against).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from telcorec.core.columns import Col, Route
from telcorec.core.config import ColdStartConfig, Config
from telcorec.features.stats import PRICE_TIERS, VALUE_TIERS
from telcorec.models.scoring import Scorer, row_minmax

NEUTRAL = 0.5


def routes(tenure_days: pd.Series, cfg: ColdStartConfig) -> np.ndarray:
    """Route.* per subscriber (object array)."""
    days = pd.to_numeric(tenure_days, errors="coerce").to_numpy(dtype=np.float64)
    out = np.full(len(days), Route.ESTABLISHED, dtype=object)
    out[days <= cfg.warm_days] = Route.WARM  # NaN compares False: unknown stays established
    out[days <= cfg.new_days] = Route.NEW
    return out


def content_weights(route: np.ndarray, cfg: ColdStartConfig) -> np.ndarray:
    """The content rules' share of each subscriber's ranking score."""
    return np.select([route == Route.NEW, route == Route.WARM],
                     [1.0, cfg.warm_content_weight], 0.0)


def _tier_index(values: pd.Series, tiers: tuple[str, ...]) -> np.ndarray:
    position = {t: float(i) for i, t in enumerate(tiers)}
    return values.map(position).astype(np.float64).to_numpy()


@dataclass
class ContentScorer:
    """The content rule score as a Scorer (also an evaluation baseline, `content`)."""
    offer_ids: list[str]
    plan_types: np.ndarray     # per offer
    payment_types: np.ndarray  # per offer
    data_gb: np.ndarray        # per offer
    price_tiers: np.ndarray    # per offer, 0..3 (NaN unknown)
    cfg: ColdStartConfig
    name: str = "content"
    version: str = "content-rules"

    @classmethod
    def from_offers(cls, offers: pd.DataFrame, cfg: ColdStartConfig) -> "ContentScorer":
        """`offers`: offer_features rows in offer_idx order."""
        return cls(offers[Col.OFFER_ID].tolist(),
                   offers[Col.PLAN_TYPE].astype(object).to_numpy(),
                   offers[Col.PAYMENT_TYPE].astype(object).to_numpy(),
                   offers[Col.DATA_GB].to_numpy(np.float64),
                   _tier_index(offers[Col.PRICE_TIER], PRICE_TIERS), cfg)

    def segment_fit(self, batch: pd.DataFrame) -> np.ndarray:
        plan = np.zeros((len(batch), len(self.offer_ids)))
        segments = batch[Col.SEGMENT].astype(object).to_numpy()
        for segment in pd.unique(segments):
            rows = segments == segment
            wanted = self.cfg.segment_plan_types.get(segment)
            plan[rows] = (NEUTRAL if wanted is None
                          else np.isin(self.plan_types, list(wanted)).astype(np.float64))
        payment = batch[Col.PAYMENT_TYPE].astype(object).to_numpy()[:, None]
        same = (payment == self.payment_types[None, :]).astype(np.float64)
        known = pd.notna(payment)
        return 0.5 * plan + 0.5 * np.where(known, same, NEUTRAL)

    def data_fit(self, batch: pd.DataFrame) -> np.ndarray:
        use = pd.to_numeric(batch[Col.DATA_GB_MONTH], errors="coerce").to_numpy(np.float64)
        need = self.cfg.data_headroom * use[:, None] + 1.0
        with np.errstate(invalid="ignore"):
            fit = np.exp(-np.abs(np.log((self.data_gb[None, :] + 1.0) / need)))
        return np.where(np.isnan(fit), NEUTRAL, fit)

    def price_fit(self, batch: pd.DataFrame) -> np.ndarray:
        value = _tier_index(batch[Col.VALUE_TIER], VALUE_TIERS)
        gap = np.abs(value[:, None] - self.price_tiers[None, :]) / (len(PRICE_TIERS) - 1)
        return np.where(np.isnan(gap), NEUTRAL, 1.0 - gap)

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        w = self.cfg.content
        return (w.segment * self.segment_fit(batch) + w.data * self.data_fit(batch)
                + w.price * self.price_fit(batch))


@dataclass
class ColdStartBlend:
    """A model as served: new and warm subscribers' scores are blended with the content rules
    by tenure (above); established subscribers keep the model's own scores.
    Evaluation measures models through this too, so the metrics are those of what is served."""
    model: Scorer
    content: ContentScorer
    cfg: ColdStartConfig

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def offer_ids(self) -> list[str]:
        return self.model.offer_ids

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        s = np.asarray(self.model.score(batch), dtype=np.float64)
        w = content_weights(routes(batch[Col.TENURE_DAYS], self.cfg), self.cfg)
        rows = np.flatnonzero(w > 0)
        if rows.size:
            s = s.copy()
            share = w[rows, None]
            s[rows] = (share * self.content.score(batch.iloc[rows])
                       + (1 - share) * row_minmax(s[rows]))
        return s


def served(scorer: Scorer, cfg: Config, offers: pd.DataFrame) -> Scorer:
    """`scorer` with the cold-start routing of cfg.cold_start (when enabled); `offers`:
    offer_features in offer_idx order."""
    if not cfg.cold_start.enabled:
        return scorer
    return ColdStartBlend(scorer, ContentScorer.from_offers(offers, cfg.cold_start),
                          cfg.cold_start)
