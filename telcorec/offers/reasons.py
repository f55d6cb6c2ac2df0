"""Reasons: why an offer row is there, as readable strings in the `reasons` column of `offers`.

Each element reads "<code>: <text>":
- the subscriber-feature x offer-feature pairs that add most to the LightFM score, e.g.
  "data_intensity=high x data_tier=heavy: uses 18 GB a month; plan gives 30 GB";
- "rule <name>: <description>" for every eligibility rule whose condition the pair met (and
  so had to pass);
- "cold_start: new subscriber ..." / "warm_start: ..." for the new and warm routes of
  telcorec/offers/cold_start.py (content rules only / blended with the model; a new subscriber's row
  gets no model pairs, the model had no say in it);
- "cold_start: no plan history ..." for an established subscriber without plan history;
- "control: ..." for rows of the experiment's control arm (the baseline, no model reasons).

Why pairs: a LightFM hybrid score is (sum_a u_a e_a) . (sum_b v_b f_b) + biases, where a runs
over the subscriber's feature tokens, b over the offer's (its categoricals and its id) and u, v
are the row-normalised indicator weights. The score therefore splits exactly into the terms
u_a v_b (e_a . f_b). The offer side of those terms, v_b (e_a . f_b) for every subscriber token a
and each offer's tokens b, is computed once per shard model (subscriber tokens x offers x the
offer's tokens: sized by the vocabulary and the catalogue, not by subscribers); a row then
gathers its tokens' slices of it and multiplies by u_a, vectorised.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import ColdStartConfig
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import history
from telcorec.models.lightfm.scorer import LightFMScorer
from telcorec.models.scoring import EnsembleScorer, Scorer
from telcorec.models.topk import top_k_columns
from telcorec.offers.cold_start import ColdStartBlend

IDENTITY = "id"  # the offer's own token in the item vocabulary ("id=OFR0012")
OFFER_TOKEN_COLUMNS = (*OFFER_CATEGORICALS, IDENTITY)
COLD_START = "cold_start: no plan history yet; ranked from attributes and usage"
CONTROL = "control: the baseline's offer (most-held plans), experiment control arm"
_NULL = pa.scalar(None, pa.string())


def new_route(cfg: ColdStartConfig) -> str:
    return (f"cold_start: new subscriber ({cfg.new_days} days or less with us); ranked by "
            "content rules: segment, data and price fit")


def warm_route(cfg: ColdStartConfig) -> str:
    share = round(cfg.warm_content_weight * 100)
    return (f"warm_start: {cfg.new_days + 1}-{cfg.warm_days} days with us; {share}% content "
            f"rules, {100 - share}% model")


def _phrase(values: pd.Series, template: str) -> np.ndarray:
    """`template` filled with each value's text ("unknown" for a missing one), formatted once
    per distinct value: a batch holds few distinct categories."""
    codes, uniques = pd.factorize(values)  # missing values get code -1
    texts = [template.format(str(u)) for u in uniques] + [template.format("unknown")]
    return np.array(texts, dtype=object)[codes]


def _amount(values: pd.Series, template: str, missing: str) -> np.ndarray:
    """`template` filled with each value rounded to an integer (`missing` where unknown),
    formatted once per distinct rounded value."""
    number = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    known = ~np.isnan(number)
    out = np.full(len(number), missing, dtype=object)
    rounded, at = np.unique(np.round(number[known]), return_inverse=True)
    out[known] = np.array([template.format(int(r)) for r in rounded], dtype=object)[at]
    return out


def subscriber_phrases(batch: pd.DataFrame) -> np.ndarray:
    """(subscribers x SUBSCRIBER_CATEGORICALS) what each feature says about the subscriber."""
    phrases = {
        Col.SEGMENT: _phrase(batch[Col.SEGMENT], "{} segment"),
        Col.REGION: _phrase(batch[Col.REGION], "lives in {}"),
        Col.DEVICE_TIER: _phrase(batch[Col.DEVICE_TIER], "{} phone"),
        Col.PAYMENT_TYPE: _phrase(batch[Col.PAYMENT_TYPE], "{} customer"),
        Col.TENURE_STAGE: _amount(batch[Col.TENURE_MONTHS], "{} months with us",
                                  "tenure unknown"),
        Col.DATA_INTENSITY: _amount(batch[Col.DATA_GB_MONTH], "uses {} GB a month",
                                    "uses unknown data"),
        Col.CALL_INTENSITY: _amount(batch[Col.VOICE_MIN_MONTH], "talks {} min a month",
                                    "talks unknown minutes"),
        Col.SMS_INTENSITY: _amount(batch[Col.SMS_MONTH], "sends {} SMS a month",
                                   "sends unknown SMS"),
        Col.USAGE_STABILITY: _phrase(batch[Col.USAGE_STABILITY], "{} usage"),
        Col.HOUSEHOLD: _phrase(batch[Col.HOUSEHOLD], "{} household"),
    }
    return np.column_stack([phrases[c] for c in SUBSCRIBER_CATEGORICALS])


def offer_phrases(offers: pd.DataFrame) -> np.ndarray:
    """(offers x OFFER_TOKEN_COLUMNS) what each feature says about the offer (catalogue-sized)."""
    phrases = {
        Col.PLAN_TYPE: _phrase(offers[Col.PLAN_TYPE], "{} plan"),
        Col.PAYMENT_TYPE: _phrase(offers[Col.PAYMENT_TYPE], "{} plan"),
        Col.NETWORK: _phrase(offers[Col.NETWORK], "{} network"),
        Col.FAMILY: pd.Series(np.where(offers[Col.FAMILY] == "yes", "family bundle",
                                       "single-line plan"), index=offers.index),
        Col.PRICE_TIER: "costs " + offers[Col.PRICE].map("{:.2f}".format) + " a month",
        Col.DATA_TIER: "plan gives " + offers[Col.DATA_GB].map("{:g}".format) + " GB",
        IDENTITY: pd.Series("chosen by customers like this one", index=offers.index),
    }
    return np.column_stack([np.asarray(phrases[c], dtype=object) for c in OFFER_TOKEN_COLUMNS])


def padded(features: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """A CSR indicator matrix as (rows x widest row) token indices (-1 pads) and weights."""
    counts = np.diff(features.indptr)
    width = max(int(counts.max(initial=0)), 1)
    rows = np.repeat(np.arange(features.shape[0]), counts)
    position = np.arange(features.nnz) - np.repeat(features.indptr[:-1], counts)
    tokens = np.full((features.shape[0], width), -1, dtype=np.int64)
    weights = np.zeros((features.shape[0], width), dtype=np.float64)
    tokens[rows, position] = features.indices
    weights[rows, position] = features.data
    return tokens, weights


def _columns_of(tokens: tuple[str, ...], columns: tuple[str, ...]) -> np.ndarray:
    return np.array([columns.index(t.split("=", 1)[0]) for t in tokens], dtype=np.int64)


@dataclass(frozen=True)
class Explainer:
    """Everything the pair reasons of one LightFM model need, small enough to broadcast."""
    user_vocab: Vocabulary
    user_names: np.ndarray              # token strings, object
    item_names: np.ndarray
    user_columns: np.ndarray            # token -> index into SUBSCRIBER_CATEGORICALS
    item_columns: np.ndarray            # token -> index into OFFER_TOKEN_COLUMNS
    offer_terms: dict[int, np.ndarray]  # shard -> (user tokens x offers x width) v_b (e_a . f_b)
    offer_tokens: np.ndarray            # (offers x width) item tokens, -1 pads (terms 0)
    phrases: np.ndarray                 # offer_phrases of the catalogue
    offer_ids: np.ndarray               # offer_idx -> offer_id, object
    # history-aware models (models/lightfm/history.py): shard -> (history offer x offer) terms
    # (e_h . sum_b v_b f_b), and the weight of a history of n offers' tokens (w / sqrt(n))
    history_terms: dict[int, np.ndarray] | None = None
    history_weight: float | None = None

    @classmethod
    def build(cls, user_vocab: Vocabulary, item_vocab: Vocabulary, item_features: sp.csr_matrix,
              embeddings: dict[int, tuple[np.ndarray, np.ndarray]],
              offers: pd.DataFrame, history_weight: float | None = None) -> "Explainer":
        """`embeddings`: shard -> (user feature embeddings, item feature embeddings);
        `item_features` and `offers` in offer_idx order."""
        tokens, weights = padded(item_features.tocsr())
        n = len(user_vocab)  # rows past the feature tokens are history tokens, one per offer
        offer_terms = {s: np.asarray(u[:n] @ i.T, dtype=np.float64)[:, np.maximum(tokens, 0)]
                       * weights[None, :, :] for s, (u, i) in embeddings.items()}
        history_terms = ({s: np.asarray(u[n:] @ (item_features @ i).T, dtype=np.float64)
                          for s, (u, i) in embeddings.items()}
                         if history_weight is not None else None)
        return cls(user_vocab, np.asarray(user_vocab.tokens, dtype=object),
                   np.asarray(item_vocab.tokens, dtype=object),
                   _columns_of(user_vocab.tokens, SUBSCRIBER_CATEGORICALS),
                   _columns_of(item_vocab.tokens, OFFER_TOKEN_COLUMNS),
                   offer_terms, tokens, offer_phrases(offers),
                   offers[Col.OFFER_ID].to_numpy(dtype=object), history_terms, history_weight)

    def history_reason(self, batch: pd.DataFrame, rows: np.ndarray,
                       offers: np.ndarray) -> pa.StringArray:
        """"history: holds <offer>" naming the held offer whose token adds most to the pair's
        score (null where the model has no history tokens or none adds anything)."""
        best = np.full(len(rows), -1)
        if self.history_terms is not None and len(rows):
            held = history.batch_histories(batch[Col.HISTORY_IDX].iloc[rows])
            padded_held, _ = padded(history.history_block(held, len(self.offer_ids), 1.0))
            lengths = (padded_held >= 0).sum(axis=1)
            shard = batch[Col.SHARD].to_numpy()[rows]
            for s, table in self.history_terms.items():
                mine = np.flatnonzero((shard == s) & (lengths > 0))
                if mine.size:
                    h = padded_held[mine]
                    terms = np.where(h >= 0, table[np.maximum(h, 0), offers[mine, None]], -np.inf)
                    pick = np.argmax(terms, axis=1)
                    good = terms[np.arange(mine.size), pick] > 0
                    best[mine[good]] = h[good, pick[good]]
        names = np.where(best >= 0, self.offer_ids[np.maximum(best, 0)], None)
        text = np.array([None if n is None else f"history: holds {n}; subscribers who hold it "
                         "take this offer" for n in names], dtype=object)
        return pa.array(text, pa.string())

    def pair_terms(self, batch: pd.DataFrame, rows: np.ndarray,
                   offers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each (batch row, offer index) pair, the terms u_a v_b (e_a . f_b) of its score
        (pairs x user tokens x item tokens) and the token indices along both axes (-1 pads,
        whose terms are 0). The terms sum to the score without its two biases (and, for a
        history-aware model, without its history tokens' part: history_reason)."""
        user_tokens, user_weights = padded(self.user_vocab.encode(batch))
        u_tok, u_weight = user_tokens[rows], user_weights[rows]
        terms = np.zeros((len(rows), u_tok.shape[1], self.offer_tokens.shape[1]))
        shard = batch[Col.SHARD].to_numpy()[rows]
        for s, table in self.offer_terms.items():
            mine = np.flatnonzero(shard == s)
            if mine.size:  # each (row, user token): one contiguous row of the offer's terms
                n_offers, width = table.shape[1:]
                part = np.take(table.reshape(-1, width),
                               np.maximum(u_tok[mine], 0) * n_offers + offers[mine, None], axis=0)
                part *= u_weight[mine, :, None]
                terms[mine] = part
        return terms, u_tok, self.offer_tokens[offers]

    def top_pairs(self, batch: pd.DataFrame, rows: np.ndarray, offers: np.ndarray,
                  top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The `top` token pairs with the largest terms, as (user token, item token, valid)
        arrays of shape (pairs x top); only positive terms are valid reasons."""
        terms, u_tok, i_tok = self.pair_terms(batch, rows, offers)
        flat = terms.reshape(len(rows), -1)
        order = top_k_columns(flat, top)
        user_pos, item_pos = np.divmod(order, i_tok.shape[1])
        return (np.take_along_axis(u_tok, user_pos, axis=1),
                np.take_along_axis(i_tok, item_pos, axis=1),
                np.take_along_axis(flat, order, axis=1) > 0)

    def pair_reasons(self, batch: pd.DataFrame, rows: np.ndarray, offers: np.ndarray,
                     top: int) -> list[pa.StringArray]:
        """`top` slots of "<code>: <text>" per pair (null where no positive term is left),
        joined by Arrow's string kernels: no Python string operation per row."""
        user_tok, item_tok, valid = self.top_pairs(batch, rows, offers, top)
        who = subscriber_phrases(batch)  # (subscribers x columns), flattened row by row
        who_flat = pa.array(who.ravel(), pa.string())
        what_flat = pa.array(self.phrases.ravel(), pa.string())
        user_names, item_names = (pa.array(self.user_names, pa.string()),
                                  pa.array(self.item_names, pa.string()))
        slots = []
        for t in range(user_tok.shape[1]):
            u, i = np.maximum(user_tok[:, t], 0), np.maximum(item_tok[:, t], 0)  # pads: invalid
            code = pc.binary_join_element_wise(user_names.take(u), item_names.take(i), " x ")
            text = pc.binary_join_element_wise(
                who_flat.take(rows * who.shape[1] + self.user_columns[u]),
                what_flat.take(offers * self.phrases.shape[1] + self.item_columns[i]), "; ")
            slots.append(pc.if_else(pa.array(valid[:, t]),
                                    pc.binary_join_element_wise(code, text, ": "), _NULL))
        return slots


def marker(flags: np.ndarray, text: str) -> pa.StringArray:
    """One reasons slot: `text` where flags is True, null elsewhere."""
    return pc.if_else(pa.array(np.asarray(flags, dtype=bool)), pa.scalar(text), _NULL)


def as_list_array(slots: list[pa.Array | np.ndarray], rows: int) -> pa.ListArray:
    """Slots (each one string or null per row; Arrow arrays or object arrays) as an Arrow
    list<string> column of each row's present strings in slot order, no Python loop over rows:
    the slots laid end to end, taken row by row, nulls dropped, plus each row's offset."""
    if not slots:
        return pa.ListArray.from_arrays(pa.array(np.zeros(rows + 1, np.int32)),
                                        pa.array([], pa.string()))
    flat = pa.concat_arrays([s if isinstance(s, pa.Array) else pa.array(s, pa.string())
                             for s in slots])
    by_row = (np.arange(len(slots))[None, :] * rows + np.arange(rows)[:, None]).ravel()
    present = ~flat.is_null().to_numpy(zero_copy_only=False)[by_row]
    offsets = np.concatenate([[0], np.cumsum(present.reshape(rows, -1).sum(axis=1))])
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32), pa.int32()),
                                    flat.take(pa.array(by_row[present])))


def explainer_for(scorer: Scorer, offers: pd.DataFrame) -> Explainer | None:
    """Pair reasons come from a LightFM model: the published one, or an ensemble's first
    LightFM member; an NCF model has no feature-pair decomposition (markers only)."""
    if isinstance(scorer, ColdStartBlend):
        scorer = scorer.model
    members = scorer.members if isinstance(scorer, EnsembleScorer) else [scorer]
    lightfm = [m for m in members if isinstance(m, LightFMScorer)]
    if not lightfm:
        return None
    model = lightfm[0]
    embeddings = {s: (model.users[s][0], model.item_embeddings[s]) for s in model.users}
    return Explainer.build(model.user_vocab, model.item_vocab, model.item_features, embeddings,
                           offers, model.history_weight)
