"""Domain errors. Each message names the file, config key and value at fault, so a user can fix it."""


class AsalError(Exception):
    """Base class: the CLI prints these as one line and exits with status 2, without a traceback."""


class BadConfig(AsalError):
    """A config value is missing, of the wrong type, or inconsistent with another."""


class BadData(AsalError):
    """An input data file is missing, truncated, or holds what the config says it should not."""


class PoolExhausted(AsalError):
    """A strategy was asked for more samples than the unlabelled pool still holds."""
