"""Builders of literal table rows shared by the tests (imported by test modules, never a test)."""
import datetime as dt

from pyspark.sql import types as T

NEUTRAL = {T.StringType: "x", T.BooleanType: False, T.IntegerType: 0, T.LongType: 0,
           T.DoubleType: 0.0, T.DateType: dt.date(2026, 11, 1), T.ArrayType: []}


def full_row(schema: T.StructType, **values):
    """A row of `schema`: the given values, NULL or a neutral value where none is given."""
    return tuple(values.get(f.name, None if f.nullable else NEUTRAL[type(f.dataType)])
                 for f in schema.fields)
