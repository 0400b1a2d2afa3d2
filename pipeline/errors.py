"""Errors a user can hit, each saying what was wrong and what to do."""


class DocintelError(Exception):
    """Base class for docintel's user-facing errors."""


class UnsupportedFormatError(DocintelError):
    """The file type is not one docintel reads."""


class DocumentReadError(DocintelError):
    """A document of a supported type could not be read (corrupt, encrypted, empty, too large)."""


class ModelIntegrityError(DocintelError):
    """Model weights are missing, unsafe (pickle) or do not match the registry's sha256."""


class ConfigurationError(DocintelError):
    """A setting or option has a value docintel cannot use."""


def is_transient(exc: object) -> bool:
    """A fault worth retrying with backoff: the store busy or its connection lost, a race on a shared row,
    a worker process that died. Bad documents never get here: the steps record them as failures."""
    from concurrent.futures.process import BrokenProcessPool

    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

    if isinstance(exc, (OperationalError, IntegrityError, BrokenProcessPool, ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
