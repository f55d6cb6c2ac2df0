"""Re-ranking: the final score of an offer for a subscriber, and the order it gives.

    final = w_relevance x relevance + w_revenue x revenue + w_retention x retention
            + w_diversity x diversity

- relevance: the model's score, min-max normalised over the subscriber's allowed offers (0..1);
- revenue: price uplift over the current plan, divided by the catalogue's price span (-1..1;
  a downgrade is negative). Without a current plan in the catalogue the reference is the
  catalogue's median price;
- retention: churn probability x retention value, where the retention value is the mean of
  data coverage (plan allowance / monthly data use, capped at 1; 1 when use is unknown or 0)
  and value for money (offer_value min-max normalised over the catalogue) (0..1; 0 without a
  churn estimate);
- diversity (MMR): 1 - the highest attribute similarity to an offer already ranked above (1 at
  rank 1). Similarity is the share of the offers' categorical attributes that are equal.

Offers are picked greedily, one rank at a time for every subscriber of a batch at once, so the
loop runs over ranks (K + spare), never over pairs. A pick's diversity can only fall as more
offers are ranked, so final scores never rise with the rank: the rank follows the final score.
The weights (config `rerank`) sum to 1 and may differ per segment; the control arm of an
experiment is ranked by relevance alone (its baseline's order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from telcorec.core.columns import OFFER_CATEGORICALS, Col
from telcorec.core.config import RerankConfig

COMPONENTS = (Col.RELEVANCE, Col.REVENUE, Col.RETENTION, Col.DIVERSITY)
RELEVANCE_ONLY = (1.0, 0.0, 0.0, 0.0)


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = np.nanmin(values), np.nanmax(values)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


@dataclass(frozen=True)
class OfferTerms:
    """What the components need of the catalogue, arrays in offer_idx order."""
    price: np.ndarray
    data_gb: np.ndarray
    value: np.ndarray       # offer_value, min-max normalised over the catalogue
    similarity: np.ndarray  # (offers x offers) share of equal categorical attributes
    index: pd.Index         # offer_id -> position

    @classmethod
    def from_offers(cls, offers: pd.DataFrame) -> "OfferTerms":
        """`offers`: offer_features rows sorted by offer_idx."""
        attrs = offers[list(OFFER_CATEGORICALS)].astype(str).to_numpy()
        similarity = (attrs[:, None, :] == attrs[None, :, :]).mean(axis=2)
        return cls(offers[Col.PRICE].to_numpy(np.float64), offers[Col.DATA_GB].to_numpy(np.float64),
                   _minmax(offers[Col.OFFER_VALUE].to_numpy(np.float64)), similarity,
                   pd.Index(offers[Col.OFFER_ID]))


def relevance(raw: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row min-max over the allowed offers; a row's only (or all equal) offers score 1.
    NaN stays NaN, so the quality gate still sees a broken model."""
    finite = allowed & np.isfinite(raw)
    low = np.where(finite, raw, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, raw, -np.inf).max(axis=1, keepdims=True)
    spread = high - low > 0
    with np.errstate(invalid="ignore"):
        out = raw - low
        out /= np.where(spread, high - low, 1.0)
    flat = ~spread[:, 0]
    if flat.any():
        out[flat] = np.where(np.isnan(raw[flat]), np.nan, 1.0)
    return out


def revenue(terms: OfferTerms, current_offer: pd.Series) -> np.ndarray:
    position = terms.index.get_indexer(current_offer.fillna("").to_numpy(dtype=object))
    reference = np.where(position >= 0, terms.price[np.maximum(position, 0)],
                         np.median(terms.price))
    span = terms.price.max() - terms.price.min()
    uplift = (terms.price[None, :] - reference[:, None]) / (span if span > 0 else 1.0)
    return np.clip(uplift, -1.0, 1.0)


def retention(terms: OfferTerms, churn: pd.Series, data_use: pd.Series) -> np.ndarray:
    use = data_use.to_numpy(dtype=np.float64, na_value=np.nan)[:, None]
    known = np.isfinite(use) & (use > 0)
    value = terms.data_gb[None, :] / np.where(known, use, 1.0)  # coverage, in place from here
    np.minimum(value, 1.0, out=value)
    value[~known[:, 0]] = 1.0
    value *= 0.5
    value += 0.5 * terms.value[None, :]
    value *= np.nan_to_num(churn.to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)[:, None]
    return value


def weights_for(segments: pd.Series, cfg: RerankConfig, control: np.ndarray) -> np.ndarray:
    """(rows x 4) weights in COMPONENTS order: the segment's, else the default; the control
    arm's rows rank by relevance alone."""
    default = np.asarray(cfg.weights.as_tuple())
    out = np.tile(default, (len(segments), 1))
    for segment, weights in cfg.segments.items():
        out[(segments == segment).to_numpy()] = weights.as_tuple()
    out[control] = RELEVANCE_ONLY
    return out


@dataclass(frozen=True)
class Ranking:
    """Per subscriber row, `depth` picks: offer index (-1 past the allowed offers), final
    score and the four components (depth x 4)."""
    offers: np.ndarray
    final: np.ndarray
    components: np.ndarray


def greedy_rank(parts: tuple[np.ndarray, np.ndarray, np.ndarray], allowed: np.ndarray,
                similarity: np.ndarray, weights: np.ndarray, depth: int) -> Ranking:
    """MMR-style greedy ranking of (relevance, revenue, retention) matrices. Ties go to the
    lower offer index; a NaN final score is picked last but kept as NaN.

    Only contenders are ranked: diversity lies in [0, 1], so an offer whose fixed score plus
    the full diversity weight is below a row's depth-th best fixed score is beaten at every
    step by one of those depth offers still open, and can never be picked. Rows are ranked in
    groups by their number of contenders (a power of two), each over only those columns."""
    n, m = allowed.shape
    depth = min(depth, m)
    fixed = weights[:, 0, None] * parts[0]
    for c in (1, 2):
        fixed += weights[:, c, None] * parts[c]
    threshold = np.partition(_pick_key(fixed, allowed), m - depth, axis=1)[:, m - depth, None]
    contender = allowed & ~(fixed + weights[:, 3, None] < threshold)  # NaN stays a contender
    count = contender.sum(axis=1)
    width = np.minimum(2 ** np.ceil(np.log2(np.maximum(count, 1))), m).astype(np.int64)
    dissimilarity = 1.0 - similarity
    ranking = Ranking(np.full((n, depth), -1, dtype=np.int64), np.full((n, depth), np.nan),
                      np.full((n, depth, 4), np.nan))
    for w in np.unique(width):
        rows = np.flatnonzero(width == w)
        # the group's contenders first, in offer index order; the rest of the w slots closed
        at, offer = np.nonzero(contender[rows])
        mine = count[rows]
        slot = np.arange(len(at)) - np.repeat(np.cumsum(mine) - mine, mine)
        columns = np.zeros((len(rows), w), dtype=np.int64)
        columns[at, slot] = offer
        open_ = np.zeros((len(rows), w), dtype=bool)
        open_[at, slot] = True
        flat = rows[:, None] * m + columns  # into the (n x m) matrices, no copy of their rows
        part = _greedy_on_columns([np.take(p, flat) for p in parts], np.take(fixed, flat),
                                  open_, columns, dissimilarity, weights[rows, 3], depth)
        ranking.offers[rows], ranking.final[rows] = part.offers, part.final
        ranking.components[rows] = part.components
    return ranking


def _pick_key(score: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """What argmax picks by: open offers' scores (NaN below every number), closed at -inf."""
    key = np.where(open_, score, -np.inf)
    nan = np.isnan(key)
    if nan.any():
        key[nan] = np.finfo(np.float64).min
    return key


def _greedy_on_columns(parts: list[np.ndarray], fixed: np.ndarray, open_: np.ndarray,
                       columns: np.ndarray, dissimilarity: np.ndarray,
                       diversity_weight: np.ndarray, depth: int) -> Ranking:
    """The greedy picks over a subset of offers per row: `columns` (rows x width) are the
    offer indices the (rows x width) `parts`, `fixed` and `open_` refer to, the open ones in
    ascending order."""
    n, width = open_.shape
    diversity = np.ones((n, width))  # 1 - the highest similarity to an offer already picked
    # the pick key without diversity; adding a diversity term (<= 1) leaves -inf (closed) and
    # the float minimum (NaN) where they are
    key = _pick_key(fixed, open_)
    rows = np.arange(n)
    offers = np.full((n, depth), -1, dtype=np.int64)
    final = np.full((n, depth), np.nan)
    components = np.full((n, depth, 4), np.nan)
    for step in range(min(depth, width)):
        pick = np.argmax(key + diversity_weight[:, None] * diversity, axis=1)
        some = ~np.isneginf(key[rows, pick])
        offer = columns[rows, pick]
        picked = diversity[rows, pick]
        offers[some, step] = offer[some]
        final[some, step] = (fixed[rows, pick] + diversity_weight * picked)[some]
        for c, part in enumerate(parts):
            components[some, step, c] = part[rows, pick][some]
        components[some, step, 3] = picked[some]
        key[rows[some], pick[some]] = -np.inf
        diversity = np.minimum(diversity, np.take(dissimilarity,
                                                  offer[:, None] * len(dissimilarity) + columns))
    return Ranking(offers, final, components)


def rank(raw: np.ndarray, allowed: np.ndarray, batch: pd.DataFrame, terms: OfferTerms,
         weights: np.ndarray, depth: int) -> Ranking:
    """The components for a batch of subscribers (subscriber_features columns) and the greedy
    ranking of their allowed offers by final score."""
    parts = (relevance(raw, allowed), revenue(terms, batch[Col.CURRENT_OFFER_ID]),
             retention(terms, batch[Col.CHURN_PROBABILITY], batch[Col.DATA_GB_MONTH]))
    return greedy_rank(parts, allowed, terms.similarity, weights, depth)
