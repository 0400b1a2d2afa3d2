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
