"""The `runs` record of an attempt: how it ended, for the pipeline and for a job run alone."""
from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable

from telcorec.core import config
from telcorec.core.columns import Col, RunStatus
from telcorec.core.exceptions import GateRejected
from telcorec.io import runs

RUN_DATE = dt.date(2026, 11, 23)


def _statuses(path):
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return [(r[Col.ATTEMPT_ID], r[Col.STATUS], r[Col.MESSAGE], r[Col.MODEL_VERSION])
            for r in sorted(rows, key=lambda r: (r[Col.STARTED_AT], r[Col.ENDED_AT] is not None))]


@pytest.mark.parametrize("error, status, message", [
    (None, RunStatus.SUCCEEDED, None),
    (GateRejected("quality gate refused to publish: coverage 1% below 20%"), RunStatus.REJECTED,
     "quality gate refused to publish: coverage 1% below 20%"),
    # a library error may quote row values: only its type is kept
    (ValueError("Preview of invalid data: +4570000001"), RunStatus.FAILED, "ValueError"),
])
def test_an_attempt_is_running_then_ends_once(tmp_path, error, status, message):
    cfg = config.load("conf/local.yaml")

    def work(results):
        results["score"] = {"offers": 10, "model_version": "lightfm_warp-x"}
        if error is not None:
            raise error

    table = tmp_path / "runs"
    if error is None:
        out = runs.recorded(table, tmp_path / "metrics", cfg, RUN_DATE, work)
        assert out["score"]["offers"] == 10
    else:
        with pytest.raises(type(error)):
            runs.recorded(table, tmp_path / "metrics", cfg, RUN_DATE, work)
    rows = _statuses(table)
    assert [r[1] for r in rows] == [RunStatus.RUNNING, status]
    assert rows[0][0] == rows[1][0]  # one attempt id
    assert rows[1][2] == message
    assert rows[1][3] == ("lightfm_warp-x" if error is None else None)
    assert "+4570000001" not in str(rows)
