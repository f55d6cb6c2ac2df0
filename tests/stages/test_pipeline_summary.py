"""The pipeline's summary says first whether the quality gate published the offers, and why not."""
import datetime as dt

from telcorec.core import config
from telcorec.core.exceptions import GateRejected
from telcorec.publish.gate import GateRefusal, OutputStats, Verdict
from telcorec.stages import pipeline

RUN = dt.date(2026, 11, 23)
CFG = config.load("conf/ibm_telco.yaml")
STATS = OutputStats(rows=45747, subscribers=7039, k=10, distinct_offers=13, catalogue_size=13,
                    non_finite_scores=0, possible_rows=60000)
EVALUATED = {"evaluate": {"lightfm_warp": {"precision@5": 0.19}, "report": "r/report.html"}}


def test_a_refusal_is_the_summarys_second_line_with_every_reason():
    reasons = ("only 45747 offer rows for 7039 subscribers x K=10, of 60000 the rules and the "
               "campaign cap allow (minimum share 90%, gate.min_row_share)",
               "catalogue coverage 1.0% below 5%")
    refusal = GateRefusal(Verdict(reasons, STATS))
    lines = pipeline.summary(CFG, RUN, EVALUATED, refusal).splitlines()
    assert lines[1:4] == [
        "quality gate: refused, offers not published (the table keeps its last published rows; "
        "the run is recorded as rejected in `runs`):",
        f"  - {reasons[0]}", f"  - {reasons[1]}"]
    assert "run report (figures, per segment, cold start, training): r/report.html" in lines
    # a refusal raised elsewhere (the drift check) is split into its reasons the same way
    drift = GateRejected("quality gate refused to publish: input drift: PSI above 0.2; x")
    assert pipeline.summary(CFG, RUN, EVALUATED, drift).splitlines()[2:4] == [
        "  - input drift: PSI above 0.2", "  - x"]


def test_a_published_run_says_so_with_the_row_check():
    line = Verdict((), STATS).rows_line()
    assert line == ("45,747 offer rows of 60,000 the rules and the campaign cap allow "
                    "(7,039 subscribers x K=10 = 70,390)")
    results = {**EVALUATED, "score": {"offers": 45747, "model": "lightfm_warp",
                                      "gate": line}}
    text = pipeline.summary(CFG, RUN, results)
    assert text.splitlines()[1] == f"quality gate: passed, offers published: {line}"
    assert "score: offers 45,747, model lightfm_warp" in text and "gate passed" not in text
    assert "refused" not in text
