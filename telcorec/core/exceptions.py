"""The project's own errors: each says what is wrong and what to do about it."""


class TelcorecError(Exception):
    """Base class: an error the user can act on (bad config, bad input, refused write)."""


class ConfigError(TelcorecError, ValueError):
    """A configuration key is unknown, missing or out of range."""


class SchemaError(TelcorecError, ValueError):
    """An input table lacks a column or has it with the wrong type."""


class DataError(TelcorecError, ValueError):
    """Input data breaks a rule that quarantine cannot absorb (e.g. too many rejects)."""


class PublishError(TelcorecError):
    """A write to an output table was refused; the table is left as it was."""


class ModelError(TelcorecError):
    """A model diverged, or an artifact is missing, corrupt or not ours."""


class GateRejected(TelcorecError):
    """The run's offers were not published; the message lists every failed check."""
