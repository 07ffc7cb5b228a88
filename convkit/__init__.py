"""convkit: raw chat and instruction-tuning datasets in, clean token-limited conversations out."""

from ._version import __version__
from .errors import ConfigError, ConvkitError, InputError, OutputError
from .filters import Dedup, FilterChain, FilterConfig, build_filters
from .formats import Format, RecordRejected, detect_format, format_names, get_format
from .io import RecordWriter, iter_inputs, read_records
from .markdown import html_to_markdown, looks_like_html
from .model import Conversation, Source, Turn
from .options import Options
from .pipeline import Result, convert
from .split import split_conversation
from .stats import Stats
from .tokens import TokenCounter, load_tokenizer

__all__ = [
    "ConfigError",
    "Conversation",
    "ConvkitError",
    "Dedup",
    "FilterChain",
    "FilterConfig",
    "Format",
    "InputError",
    "Options",
    "OutputError",
    "RecordRejected",
    "RecordWriter",
    "Result",
    "Source",
    "Stats",
    "TokenCounter",
    "Turn",
    "__version__",
    "build_filters",
    "convert",
    "detect_format",
    "format_names",
    "get_format",
    "html_to_markdown",
    "iter_inputs",
    "load_tokenizer",
    "looks_like_html",
    "read_records",
    "split_conversation",
]
