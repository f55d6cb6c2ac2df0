import datetime as dt

import pytest
from deltalake import DeltaTable
from pyspark.testing import assertDataFrameEqual

from helpers.fault_injection import offer_row, offers_rows
from telcorec.core import schemas
from telcorec.core.exceptions import PublishError
from telcorec.io import delta_rs, writer
from telcorec.io.writer import DeltaRsWriter, SparkDeltaWriter

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def offers(spark, run_date, n, offer="O1", parts=3):
    return offers_rows(spark, run_date, n, parts, offer)


def test_replace_partition_is_idempotent_and_leaves_other_dates(spark, tmp_path):
    path = tmp_path / "offers"
    DeltaRsWriter().replace_partition(offers(spark, D1, 10), path, schemas.OFFERS, D1)
    DeltaRsWriter().replace_partition(offers(spark, D2, 5), path, schemas.OFFERS, D2)
    d2_files = set(DeltaTable(str(path)).files(partition_filters=[("run_date", "=", "2026-11-02")]))
    for _ in range(2):
        DeltaRsWriter().replace_partition(offers(spark, D1, 7, "O2"), path, schemas.OFFERS, D1)
    table = DeltaTable(str(path))
    assert table.version() == 3
    assert set(table.files(partition_filters=[("run_date", "=", "2026-11-02")])) == d2_files
    got = DeltaRsWriter().read(spark, path, schemas.OFFERS)
    assertDataFrameEqual(got, offers(spark, D1, 7, "O2").union(offers(spark, D2, 5)))
    assert DeltaRsWriter().read(spark, path, schemas.OFFERS, [D2]).count() == 5


def test_row_of_another_run_date_is_refused_without_a_commit(spark, tmp_path):
    path = tmp_path / "offers"
    DeltaRsWriter().replace_partition(offers(spark, D1, 4), path, schemas.OFFERS, D1)
    mixed = offers(spark, D1, 3).union(offers(spark, D2, 1))
    with pytest.raises(Exception, match="run_date is not 2026-11-01"):
        DeltaRsWriter().replace_partition(mixed, path, schemas.OFFERS, D1)
    assert DeltaTable(str(path)).version() == 0
    assert DeltaRsWriter().read(spark, path, schemas.OFFERS).count() == 4


def test_null_in_not_null_column_is_refused(spark, tmp_path):
    path = tmp_path / "offers"
    bad = spark.createDataFrame([offer_row(D1, None)],
                                schemas.OFFERS.__class__([f.__class__(f.name, f.dataType, True)
                                                          for f in schemas.OFFERS.fields]))
    with pytest.raises(Exception, match="subscriber_id' is declared NOT NULL"):
        DeltaRsWriter().replace_partition(bad, path, schemas.OFFERS, D1)
    assert not delta_rs.is_delta_table(path)


def test_empty_partition_reads_back_empty(spark, tmp_path):
    path = tmp_path / "offers"
    DeltaRsWriter().replace_partition(offers(spark, D1, 2), path, schemas.OFFERS, D1)
    assert DeltaRsWriter().read(spark, path, schemas.OFFERS, [D2]).count() == 0


def test_missing_table_error_says_what_to_run(spark, tmp_path):
    with pytest.raises(PublishError, match="run the stage that writes it"):
        DeltaRsWriter().read(spark, tmp_path / "nope", schemas.OFFERS)


def test_writer_choice(spark):
    assert type(writer.choose(spark, "auto")) is DeltaRsWriter  # no Delta extension here
    assert type(writer.choose(spark, "delta-rs")) is DeltaRsWriter
    assert type(writer.choose(spark, "spark")) is SparkDeltaWriter
