"""Domain errors: each carries a message meant for a person.

The CLI turns a `ModelcycleError` into one line and a non-zero exit code; the API into a 4xx.
The CLI treats the environment's own errors (OSError, unreadable Parquet, a database's refusal) as
a user's too (cli/failures.py); anything else that escapes is a bug, reported as an internal error.
"""

from __future__ import annotations


class ModelcycleError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


class InvalidInputError(ModelcycleError):
    """A value, date, file or column given by the user is wrong."""

    exit_code = 2


class DataNotFoundError(ModelcycleError):
    """The data a command needs (logs for a day, a lake partition, a model) is not there."""

    exit_code = 3


class StorageError(ModelcycleError):
    """The object store or filesystem cannot be reached or refused the operation."""

    exit_code = 4


class RegistryError(ModelcycleError):
    """The MLflow tracking server or model registry cannot be reached or refused the operation."""

    exit_code = 5


class ModelValidationError(ModelcycleError):
    """A trained model failed a check that must pass before it is registered."""

    exit_code = 6


class NotPermittedError(ModelcycleError):
    """The acting user may not do this: their role is too low, or it is their own request."""

    exit_code = 9


class ConflictError(ModelcycleError):
    """The thing acted on is no longer in a state that allows it (e.g. a decided request)."""

    exit_code = 10
