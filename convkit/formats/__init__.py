"""Dataset formats, registered by name. Importing this package registers the built-in ones."""
from . import messages, sharegpt  # noqa: F401  (registration side effect)
from .base import (
    Format,
    RecordRejected,
    detect_format,
    format_names,
    get_format,
    register,
)

__all__ = ["Format", "RecordRejected", "detect_format", "format_names", "get_format", "register"]
