"""``SetupError``: a run that cannot start as configured (a config value, the data, a metric's
weights). Its message says in one line what is wrong and what to do; ``train.py`` prints it
without a traceback and exits with status 2. Any other exception is a bug and keeps its
traceback."""


class SetupError(Exception):
    """The run cannot start as configured; the message names the cause and the fix."""


class ConfigError(SetupError, ValueError):
    """A config value out of type or range (one line: key, value, what is allowed)."""
