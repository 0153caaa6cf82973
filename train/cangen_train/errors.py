"""Errors the trainer raises: each has a stable `code` and a message that says what to do."""


class TrainError(Exception):
    """Base class: `code` is a stable string a caller (the Node CLI, a script) can switch on."""

    code = "ERR_TRAIN"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class DataFormatError(TrainError):
    """The input file is empty, ragged, or not in the format it claims to be."""

    code = "ERR_DATA_FORMAT"


class ConfigError(TrainError):
    """A flag or config value is unknown or out of range."""

    code = "ERR_TRAIN_CONFIG"


class ModelFormatError(TrainError):
    """An exported model directory is missing a file or a tensor, or a shape disagrees."""

    code = "ERR_MODEL_FORMAT"
