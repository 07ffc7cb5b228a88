"""Type stubs of the compiled word table (see ``_words_py.py``, its pure-Python twin)."""

__all__ = ["WordCounts"]

class WordCounts:
    """Word → token count for one tokenizer, holding at most about ``limit`` words."""

    limit: int

    def __init__(self, mark: str, limit: int = ..., stops: bytes | None = ...) -> None:
        """``stops``: 8,192 bytes, bit ``c & 7`` of byte ``c >> 3`` set when character ``c``
        (below U+10000) is a word alone."""
    def __len__(self) -> int: ...
    def clear(self) -> None:
        """Forget every word, and any scan whose totals were not taken."""

    def scan(self, texts: list[str]) -> list[str]:
        """The new words of ``texts`` (each once, as the tokenizer sees them, first met
        first); the known ones are summed."""

    def totals(self, counts: list[int]) -> list[int]:
        """Each text's token count, given the counts of the words the last scan returned."""
