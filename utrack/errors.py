"""Exceptions raised for bad input. Each message names the file, line or field at fault."""


class UtrackError(Exception):
    """Base class of every error utrack raises on purpose."""


class ConfigError(UtrackError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type)."""


class DataFormatError(UtrackError, ValueError):
    """An annotation or data file is malformed; the message names the file and line."""


class CheckpointError(UtrackError, RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the model."""
