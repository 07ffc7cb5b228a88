"""Type stubs of the compiled HTML → markdown engine (see ``fast.py``; the reference engine in
``reference.py`` is its pure-Python twin and oracle)."""

from collections.abc import Callable

from selectolax.lexbor import LexborNode

__all__ = ["LAYOUT_FROM", "bind", "convert", "finish", "walk"]

#: Where the declarations of lexbor's structs in ``_fast.pyx`` come from.
LAYOUT_FROM: str

def bind(
    selectolax_path: str,
    create_node: Callable[[str], LexborNode],
    parse_fragment: Callable[[str], LexborNode | None],
) -> None:
    """Find lexbor's functions in selectolax's module, learn tag ids, check the node layout.

    :raises RuntimeError: saying what does not match; the engine is then unusable.
    """

def convert(html: str) -> str:
    """Convert one HTML fragment (a message) to markdown; identical to the reference engine."""

def walk(first: LexborNode) -> str:
    """The walk's text for a parsed fragment's first node, before :func:`finish`."""

def finish(text: str) -> str:
    """``convkit.markdown._layout.finish``, the same output, one pass over the text."""
