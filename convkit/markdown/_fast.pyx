"""The compiled HTML → markdown engine: the reference engine's walk over lexbor's C tree.

Same rules, same output as :mod:`convkit.markdown.reference` (whose docstring is the spec) and
the same shape as :mod:`convkit.markdown._walk`, which it mirrors method for method; what
changes is how the tree is read and where the text goes. The reference engine asks selectolax
for a ``LexborNode`` object per step, a dict of attributes per element and a regex callback per
white-space run, and builds a list of strings per element; here the walk follows lexbor's own
node pointers and writes UTF-8 into one growing buffer. An open element is a C struct (where its
text starts in the buffer, and where its parts start in a stack of offsets), and leaving it
rewrites its text in place of the buffer's tail, so no Python object is made per node; a
table's cells and rows are offsets into arrays of their own. The walk runs without the GIL
(see :class:`_Walk`). Python remains for what is rare: image text, list start numbers, links
with a title, attribute values that are not ASCII (whose white space or digits Unicode
decides), and a line after a soft break that might start a block and is not ASCII (the
reference's patterns decide it; ASCII lines, by far the most, are decided here).

How lexbor is reached (see also ``fast.py`` and the README):

* selectolax 1.0 parses; ``LexborNode.mem_id`` is the address of the ``lxb_dom_node_t``.
* The node and text layouts (``_Node``, ``_CharData``) are declared here as selectolax's
  ``lexbor.pxd`` declares them; the wheel ships no lexbor headers to compile against.
* Names and attributes go through lexbor's exported functions, looked up with ``dlsym`` in
  selectolax's own extension module at :func:`bind` time, so no struct beyond the node's is
  read directly. So does parsing: every message is parsed as selectolax parses a fragment
  (UTF-8, context ``<div>``), into one document and parser of this module's, cleaned before
  each message instead of created and destroyed for it. The walk calls into Python now and
  then, where another thread may start a conversion: that one parses into a document of its
  own, never into the one being walked; so does :class:`BatchConverter`'s thread.
* Tag ids are learned at :func:`bind` time from elements that selectolax creates (never taken
  from lexbor's headers), and :func:`bind` checks every field it relies on against selectolax's
  Python API. ``fast.py`` then converts canary documents with both engines; any difference and
  the fast engine is not used.

Nothing recurses: the walk keeps its stack in a growing C array, as the reference keeps a list.
"""
cimport cython
from cpython.pythread cimport (
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
    WAIT_LOCK,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport uintptr_t
from libc.stdio cimport snprintf
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove, memset, strchr

from ._layout import _HTML_BLOCK_TAGS, _INTERRUPTS, BREAK, CODE, SOFT, soft_breaks
from ._lexbor import (
    _HTML_SPACE_RUN,
    _LANGUAGE,
    MAX_NESTING,
    clean_input,
    no_markers,
    parse,
    plain_text,
    too_deep,
)
from ._walk import (
    _CODE_SPAN_TAGS,
    _INLINE_CONTEXT,
    _NOFORMAT_CONTEXT,
    _ROW_GROUPS,
    _TABLE_STRUCTURE,
    BLOCK_TAGS,
    HEADINGS,
    MAX_DEPTH,
    MAX_TABLE_CELLS,
    _colspan,
    _start_number,
)
from .detect import looks_like_html
from .noise import CHROME_TAGS, DROPPED_TAGS, is_copy_stats, is_regeneration_counter
from ._rules import (
    _EDGE,
    _SCHEME_URL,
    _URL_CONTROL,
    _destination,
    _title,
)

# The walk writes the markers as UTF-8 bytes (EF B7 90, 91, 92) and strips what _EDGE holds.
assert (CODE, BREAK, SOFT) == ("\ufdd0", "\ufdd1", "\ufdd2") and _EDGE == " \n" + BREAK + SOFT

__all__ = ["LAYOUT_FROM", "BatchConverter", "bind", "convert", "convert_many", "finish", "walk"]

#: Where the declarations of lexbor's structs below come from.
LAYOUT_FROM = "selectolax 1.0.2 lexbor.pxd (lxb_dom_node_t, lxb_dom_character_data_t)"


# -- lexbor, as far as this module reads it ---------------------------------------------------

cdef extern from "Python.h":
    # Cython declares it without nogil; it is a table lookup.
    bint _is_decimal "Py_UNICODE_ISDECIMAL"(Py_UCS4 ch) nogil


cdef extern from "_dl.h":
    void *convkit_dlopen(const char *path)
    void *convkit_dlsym(void *handle, const char *name)


# lxb_dom_node_t and lxb_dom_character_data_t, field for field as selectolax 1.0's lexbor.pxd
# declares them (lexbor/dom/interfaces/node.h, character_data.h).
ctypedef struct _Str:
    unsigned char *data
    size_t length

ctypedef struct _Node:
    void *events
    uintptr_t local_name
    uintptr_t prefix
    uintptr_t ns
    void *owner_document
    _Node *next
    _Node *prev
    _Node *parent
    _Node *first_child
    _Node *last_child
    void *user
    int type

ctypedef struct _CharData:
    _Node node
    _Str data

cdef enum:
    _ELEMENT_NODE = 1
    _TEXT_NODE = 3

ctypedef void *(*_first_attr_f)(void *element) noexcept nogil
ctypedef void *(*_next_attr_f)(void *attr) noexcept nogil
ctypedef const unsigned char *(*_attr_str_f)(void *attr, size_t *length) noexcept nogil
ctypedef const unsigned char *(*_element_name_f)(void *element, size_t *length) noexcept nogil

# One document and one parser for every conversion (lexbor cleans them between uses): creating
# and destroying them per message was a fifth of the engine's time, in malloc.
ctypedef void *(*_create_f)() noexcept nogil
ctypedef void (*_clean_f)(void *obj) noexcept nogil
ctypedef unsigned int (*_init_f)(void *parser) noexcept nogil
ctypedef _Node *(*_parse_fragment_f)(
    void *parser, void *document, uintptr_t tag_id, uintptr_t ns,
    const unsigned char *html, size_t size
) noexcept nogil

ctypedef void *(*_destroy_f)(void *document) noexcept nogil

cdef _create_f _document_create = NULL
cdef _destroy_f _document_destroy = NULL
cdef _create_f _parser_create = NULL
cdef _init_f _parser_init = NULL
cdef _destroy_f _parser_destroy = NULL
# Whether a conversion is using the shared document: one that calls into Python mid-walk lets
# another thread run, whose conversion then parses into a document of its own.
cdef bint _document_busy = False
cdef _clean_f _document_clean = NULL
cdef _clean_f _parser_clean = NULL
cdef _parse_fragment_f _parse_fragment = NULL
cdef void *_document = NULL
cdef void *_parser = NULL
cdef uintptr_t _div_id = 0
cdef uintptr_t _html_ns = 0

cdef _first_attr_f _first_attr = NULL
cdef _next_attr_f _next_attr = NULL
cdef _attr_str_f _attr_name = NULL
cdef _attr_str_f _attr_value = NULL
cdef _element_name_f _element_name = NULL


# -- what a tag is, learned once per tag id --------------------------------------------------

cdef enum:
    K_OTHER = 0  # no converter: the text as it is
    K_DIV
    K_HEADING
    K_BLOCKQUOTE
    K_HR
    K_BR
    K_OL
    K_UL
    K_LI
    K_TABLE
    K_ROWGROUP
    K_TR
    K_CELL
    K_CAPTION
    K_PRE
    K_B
    K_I
    K_DEL
    K_CODE
    K_Q
    K_A
    K_IMG
    K_MATH
    K_ANNOTATION
    K_ROOT
    KIND_MASK = 0xFF
    B_BLOCK = 1 << 8
    B_CHROME = 1 << 9
    B_DROPPED = 1 << 10
    B_INLINE_CTX = 1 << 11
    B_NOFORMAT_CTX = 1 << 12
    B_TABLE_STRUCT = 1 << 13
    B_ROW_GROUP = 1 << 14
    B_CODE_TAG = 1 << 15  # exactly "code": where a <pre>'s text starts
    B_CODE_SPAN = 1 << 16
    LEVEL_SHIFT = 20

# The parent_tags of the reference engine, as bits.
cdef enum:
    F_INLINE = 1
    F_NOFORMAT = 2
    F_LI = 4
    F_B = 8
    F_I = 16
    F_DEL = 32

_KIND_OF = {
    "p": K_DIV, "div": K_DIV, "blockquote": K_BLOCKQUOTE, "hr": K_HR, "br": K_BR, "ol": K_OL,
    "ul": K_UL, "li": K_LI, "table": K_TABLE, "thead": K_ROWGROUP, "tbody": K_ROWGROUP,
    "tfoot": K_ROWGROUP, "tr": K_TR, "td": K_CELL, "th": K_CELL, "caption": K_CAPTION,
    "pre": K_PRE, "b": K_B, "strong": K_B, "i": K_I, "em": K_I, "del": K_DEL, "s": K_DEL,
    "strike": K_DEL, "code": K_CODE, "kbd": K_CODE, "samp": K_CODE, "sub": K_OTHER,
    "sup": K_OTHER, "q": K_Q, "a": K_A, "img": K_IMG, "math": K_MATH,
    "annotation": K_ANNOTATION,
}
# Tags whose converter is the plain text, like an unknown tag's.
_TEXT_CONVERTERS = frozenset({"sub", "sup"})


def _info_of(name):
    """The kind and property bits of a tag name, from the reference engine's own tables."""
    cdef int info = _KIND_OF.get(name, K_OTHER)
    if name in HEADINGS:
        info = K_HEADING | (int(name[1]) << LEVEL_SHIFT)
    elif info == K_OTHER and name in BLOCK_TAGS:
        info = K_DIV
    if name in BLOCK_TAGS:
        info |= B_BLOCK
    if name in CHROME_TAGS:
        info |= B_CHROME
    if name in DROPPED_TAGS:
        info |= B_DROPPED
    if name in _INLINE_CONTEXT:
        info |= B_INLINE_CTX
    elif name in _NOFORMAT_CONTEXT:
        info |= B_NOFORMAT_CTX
    if name in _TABLE_STRUCTURE:
        info |= B_TABLE_STRUCT
    if name in _ROW_GROUPS:
        info |= B_ROW_GROUP
    if name == "code":
        info |= B_CODE_TAG
    if name in _CODE_SPAN_TAGS:
        info |= B_CODE_SPAN
    return info


def _handled_tags():
    """The tags this engine converts; a test checks that they cover the reference engine's
    converters (checked there rather than at import, which would import markdownify)."""
    return set(_KIND_OF) | set(HEADINGS) | set(BLOCK_TAGS), set(_TEXT_CONVERTERS)

# Every name _info_of finds in a table: an element of any other name is K_OTHER.
_TABLE_NAMES = frozenset(
    set(_KIND_OF) | set(HEADINGS) | set(BLOCK_TAGS) | set(DROPPED_TAGS) | set(CHROME_TAGS)
    | set(_INLINE_CONTEXT) | set(_NOFORMAT_CONTEXT) | set(_TABLE_STRUCTURE) | set(_ROW_GROUPS)
    | set(_CODE_SPAN_TAGS) | {"code"}
)
# Names whose info is learned per tag id. Any other element is looked up by its name.
_LEARNED_NAMES = sorted(
    _TABLE_NAMES
    | {"u", "mark", "small", "abbr", "cite", "font", "time", "label", "ins", "var", "tt", "big",
       "nobr", "dfn", "data", "bdi", "bdo", "ruby", "rt", "rp", "wbr", "picture", "source",
       "mi", "mo", "mn", "msup", "msub", "mrow", "semantics", "mtext", "ms", "figure", "sup",
       # the pages' code block headers and KaTeX (learned when first met otherwise, but a walk
       # without the GIL cannot learn, so the first messages would need it)
       "span", "button", "svg", "path", "rect", "line", "circle", "g", "mspace", "mfrac",
       "msubsup", "munder", "mover", "mtable", "mtr", "mtd"}
)

cdef enum:
    _ID_CACHE = 4096
cdef int _info_by_id[_ID_CACHE]  # -1: look the element up by name
cdef uintptr_t _text_id = 0
cdef bint _bound = False
# Whether every name in _TABLE_NAMES but "annotation" has one of lexbor's own (small) ids: then
# to the walk, an element with a larger id, whose name lexbor did not know, is K_OTHER (an
# <annotation> is one too, found only by _first_descendant, with _info).
cdef bint _large_ids_are_other = False


cdef inline _Node *_node_of(object lexbor_node) except NULL:
    cdef uintptr_t address = lexbor_node.mem_id
    if address == 0:
        raise ValueError("node without a lexbor node")
    return <_Node *> address


cdef inline str _utf8(const unsigned char *data, size_t length):
    # selectolax's policy for every string it reads from lexbor.
    return PyUnicode_DecodeUTF8(<const char *> data, length, "replace")


cdef inline int _known_info(_Node *node) noexcept nogil:
    # -1 when only the element's name can tell (a lookup in Python's tables).
    cdef uintptr_t tag_id = node.local_name
    if tag_id < _ID_CACHE:
        return _info_by_id[tag_id]
    return -1


cdef int _info(_Node *node) except -1:
    cdef uintptr_t tag_id = node.local_name
    cdef size_t length = 0
    cdef const unsigned char *name
    cdef int info = _known_info(node)
    if info >= 0:
        return info
    name = _element_name(<void *> node, &length)
    if name == NULL:
        return B_DROPPED  # selectolax's tag is None: the reference skips the element
    info = _info_of(_utf8(name, length))
    if tag_id < _ID_CACHE:
        # An id this small is one of lexbor's own tags, the same in every document (bind
        # checks that other names get large ids): learned once, and from then on known to a
        # walk without the GIL too. An int is written whole, so a reader sees -1 or the info.
        _info_by_id[tag_id] = info
    return info


cdef void *_find_attr(_Node *node, const char *name, size_t length) noexcept nogil:
    # The last attribute of that qualified name, as selectolax's ``attributes`` dict keeps it.
    cdef void *attr = _first_attr(<void *> node)
    cdef void *found = NULL
    cdef const unsigned char *qname
    cdef size_t qlength = 0
    while attr != NULL:
        qname = _attr_name(attr, &qlength)
        if qname != NULL and qlength == length and memcmp(qname, name, length) == 0:
            found = attr
        attr = _next_attr(attr)
    return found


cdef object _attr(_Node *node, str name):
    """An attribute value without markers; ``""`` for a boolean attribute, None if absent."""
    cdef bytes key = name.encode("ascii")
    cdef void *attr = _find_attr(node, key, len(key))
    cdef const unsigned char *value
    cdef size_t length = 0
    if attr == NULL:
        return None
    value = _attr_value(attr, &length)
    if value == NULL:
        return ""
    return no_markers(_utf8(value, length))


cdef bint _might_be_math(_Node *node) noexcept nogil:
    # The reference tests '"katex" in class' on the value without markers; a value that may
    # hold a marker (0xEF starts its UTF-8) is decided by the slow path.
    cdef void *attr = _find_attr(node, "class", 5)
    cdef const unsigned char *value
    cdef size_t length = 0, i
    if attr == NULL:
        return False
    value = _attr_value(attr, &length)
    if value == NULL or length < 5:
        return False
    for i in range(length):
        if value[i] == 0xEF:
            return True
        if value[i] == b"k" and i + 5 <= length and memcmp(value + i, b"katex", 5) == 0:
            return True
    return False


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    return c == 32 or c == 10 or c == 9 or c == 13 or c == 12


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* Whether a byte of text may change when white space is collapsed: HTML white space other
       than the space, or the first byte of a marker (and of other three-byte characters). */
    static int convkit_text_irregular(unsigned char c) {
        return c == 9 || c == 10 || c == 12 || c == 13 || c == 0xEF;
    }
    /* How many bytes from s are copied as they are when a text's white space is collapsed
       (at least 0, at most n): up to the first byte that may change, or the first space
       followed by white space, by such a byte or by the end (it opens a run). Sixteen bytes
       a step where SSE2 is there: on prose, words and single spaces run on, where a step per
       byte tested each. */
    static size_t convkit_regular_span(const unsigned char *s, size_t n) {
        size_t i = 0;
    #if defined(__SSE2__)
        const __m128i sp = _mm_set1_epi8(32), tab = _mm_set1_epi8(9), lf = _mm_set1_epi8(10);
        const __m128i ff = _mm_set1_epi8(12), cr = _mm_set1_epi8(13);
        const __m128i ef = _mm_set1_epi8((char) 0xEF);
        for (; i + 17 <= n; i += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i y = _mm_loadu_si128((const __m128i *)(s + i + 1));
            __m128i bad_x = _mm_or_si128(
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, tab), _mm_cmpeq_epi8(x, lf)),
                             _mm_or_si128(_mm_cmpeq_epi8(x, ff), _mm_cmpeq_epi8(x, cr))),
                _mm_cmpeq_epi8(x, ef));
            __m128i bad_y = _mm_or_si128(
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(y, tab), _mm_cmpeq_epi8(y, lf)),
                             _mm_or_si128(_mm_cmpeq_epi8(y, ff), _mm_cmpeq_epi8(y, cr))),
                _mm_or_si128(_mm_cmpeq_epi8(y, ef), _mm_cmpeq_epi8(y, sp)));
            unsigned bits = (unsigned) _mm_movemask_epi8(
                _mm_or_si128(bad_x, _mm_and_si128(_mm_cmpeq_epi8(x, sp), bad_y)));
            if (bits)
                return i + __builtin_ctz(bits);
        }
    #endif
        for (; i < n; i++) {
            unsigned char c = s[i];
            if (convkit_text_irregular(c))
                return i;
            if (c == 32 && (i + 1 == n || s[i + 1] == 32 || convkit_text_irregular(s[i + 1])))
                return i;
        }
        return i;
    }
    """
    size_t _regular_span "convkit_regular_span"(const unsigned char *s, size_t n) noexcept nogil


cdef inline bint _is_marker(const unsigned char *p, size_t left) noexcept nogil:
    # U+FDD0..U+FDD2 in UTF-8.
    return left >= 3 and p[0] == 0xEF and p[1] == 0xB7 and 0x90 <= p[2] <= 0x92


cdef _Node *_next_in(_Node *node, _Node *top, bint descend) noexcept nogil:
    """The node after ``node`` in document order inside ``top``'s subtree, or NULL."""
    if descend and node.first_child != NULL:
        return node.first_child
    while node != top and node.next == NULL:
        node = node.parent
    if node == top:
        return NULL
    return node.next


cdef _Node *_first_descendant(_Node *top, int bit, int kind) except? NULL:
    """The first element below ``top`` with ``bit`` (or of ``kind``), dropped ones included."""
    cdef _Node *node = top.first_child
    cdef int info
    while node != NULL:
        if node.type == _ELEMENT_NODE and node.local_name != _text_id:
            info = _info(node)
            if (bit and info & bit) or (kind and (info & KIND_MASK) == kind):
                if kind != K_ANNOTATION or _attr(node, "encoding") == "application/x-tex":
                    return node
        node = _next_in(node, top, True)
    return NULL


# -- growing byte buffers: the walk's text is UTF-8 in these, never a str per node ----------

cdef enum:
    # A buffer that grew past this for one large message is freed after it.
    _KEEP_BUFFER_BELOW = 1 << 20

# The markers in UTF-8: EF B7 then 90 (CODE), 91 (BREAK) or 92 (SOFT).
cdef enum:
    _M0 = 0xEF
    _M1 = 0xB7
    _CODE_3 = 0x90
    _BREAK_3 = 0x91
    _SOFT_3 = 0x92


cdef class _Buffer:
    cdef unsigned char *data
    cdef size_t length, capacity
    # On a walk's scratch buffer, which every converter that may need Python reaches: whether
    # the walk runs without the GIL, and whether it met something that needs Python.
    cdef bint gilfree, bailed

    def __dealloc__(self):
        free(self.data)

    cdef int reserve(self, size_t extra) except -1 nogil:
        cdef size_t capacity = self.capacity or 256
        cdef unsigned char *data
        if self.length + extra <= self.capacity:
            return 0
        while capacity < self.length + extra:
            capacity *= 2
        data = <unsigned char *> realloc(self.data, capacity)
        if data == NULL:
            with gil:
                raise MemoryError()
        self.data = data
        self.capacity = capacity
        return 0

    cdef int add(self, const unsigned char *data, size_t length) except -1 nogil:
        if length:
            self.reserve(length)
            memcpy(self.data + self.length, data, length)
            self.length += length
        return 0

    cdef int byte(self, unsigned char c) except -1 nogil:
        self.reserve(1)
        self.data[self.length] = c
        self.length += 1
        return 0

    cdef int repeat(self, unsigned char c, size_t count) except -1 nogil:
        self.reserve(count)
        memset(self.data + self.length, c, count)
        self.length += count
        return 0

    cdef int marker(self, unsigned char third) except -1 nogil:
        self.reserve(3)
        self.data[self.length] = _M0
        self.data[self.length + 1] = _M1
        self.data[self.length + 2] = third
        self.length += 3
        return 0

    cdef int add_str(self, str text) except -1:
        # Every str added comes from decoded UTF-8 (attributes, TeX): no surrogates.
        cdef bytes data = text.encode("utf-8")
        return self.add(data, len(data))

    cdef int add_text(self, _Node *node) except -1 nogil:
        # A text node's data without markers.
        cdef _Str *s = &(<_CharData *> node).data
        cdef size_t i = 0, start = 0
        if s.data == NULL:
            return 0
        while i < s.length:
            if s.data[i] == 0xEF and _is_marker(s.data + i, s.length - i):
                self.add(s.data + start, i - start)
                i += 3
                start = i
            else:
                i += 1
        self.add(s.data + start, s.length - start)
        return 0

    cdef str text(self):
        return _utf8(self.data, self.length)

    cdef void trim(self) noexcept nogil:
        if self.capacity > _KEEP_BUFFER_BELOW:
            free(self.data)
            self.data = NULL
            self.capacity = 0
        self.length = 0


cdef inline bint _is_alpha(unsigned char c) noexcept nogil:
    return (65 <= c <= 90) or (97 <= c <= 122)


cdef inline bint _is_alnum(unsigned char c) noexcept nogil:
    return _is_alpha(c) or 48 <= c <= 57


cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c | 0x20 if 65 <= c <= 90 else c


cdef inline bint _is_py_space(unsigned char c) noexcept nogil:
    # str.isspace on ASCII, which is what \s matches in a str pattern.
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31


cdef int _ascii_attr(
    _Node *node, const char *name, size_t length, const unsigned char **value, size_t *n
) noexcept nogil:
    """An attribute's value in ``value`` and ``n`` (empty when absent or boolean): 0, or -1 when
    it is not ASCII (a marker, or Unicode white space), which Python's rules decide."""
    cdef void *attr = _find_attr(node, name, length)
    cdef size_t i
    value[0] = <const unsigned char *> b""
    n[0] = 0
    if attr == NULL:
        return 0
    value[0] = _attr_value(attr, n)
    if value[0] == NULL:
        value[0] = <const unsigned char *> b""
        n[0] = 0
        return 0
    for i in range(n[0]):
        if value[0][i] >= 0x80:
            return -1
    return 0


cdef int _attr_is(
    _Node *node, const char *name, size_t length, const unsigned char *expected, size_t n
) noexcept nogil:
    """``_attr(node, name) == expected`` for an ASCII ``expected``: 1 or 0; -1 when the value
    holds a byte that may start a marker (the comparison is after their removal)."""
    cdef const unsigned char *value
    cdef size_t vn
    if _ascii_attr(node, name, length, &value, &vn) < 0:
        return -1 if memchr(value, 0xEF, vn) != NULL else 0
    return vn == n and memcmp(value, expected, n) == 0


cdef bint _contains(const unsigned char *s, size_t n, const unsigned char *part, size_t pn) noexcept nogil:
    cdef size_t i
    if n < pn:
        return False
    for i in range(n - pn + 1):
        if s[i] == part[0] and memcmp(s + i, part, pn) == 0:
            return True
    return False


cdef bint _has_class(const unsigned char *s, size_t n, const unsigned char *name, size_t nn) noexcept nogil:
    """``name in value.split()`` on an ASCII value."""
    cdef size_t i = 0, j
    while i < n:
        while i < n and _is_py_space(s[i]):
            i += 1
        j = i
        while j < n and not _is_py_space(s[j]):
            j += 1
        if j - i == nn and memcmp(s + i, name, nn) == 0:
            return True
        i = j
    return False


cdef int _language_of(_Node *node, const unsigned char **language, size_t *length) noexcept nogil:
    """:func:`_language` on the class attribute's bytes: 0, with the info string in
    ``language`` and ``length`` (0: none); -1 for a value with non-ASCII bytes (a marker, or
    Unicode white space), which :func:`_language`'s pattern decides."""
    cdef const unsigned char *value
    cdef size_t n, i = 0, j
    length[0] = 0
    if _ascii_attr(node, "class", 5, &value, &n) < 0:
        return -1
    while i + 9 < n:
        if value[i] == 108 and memcmp(value + i, b"language-", 9) == 0 and not _is_py_space(value[i + 9]):
            j = i + 9
            while j < n and not _is_py_space(value[j]):
                j += 1
            # A backtick cannot be part of a backtick fence's info string.
            if memchr(value + i + 9, 96, j - i - 9) == NULL:
                language[0] = value + i + 9
                length[0] = j - i - 9
            return 0
        i += 1
    return 0


cdef long _colspan_of(_Node *node) noexcept nogil:
    """``_colspan`` on an ASCII value (up to 9 digits after HTML white space, 1 to 1000; 1
    otherwise); -1 for a value that is not ASCII (a Unicode digit, a marker)."""
    cdef const unsigned char *value
    cdef size_t n, i = 0, digits = 0
    cdef long span = 0
    if _ascii_attr(node, "colspan", 7, &value, &n) < 0:
        return -1
    while i < n and _is_space(value[i]):
        i += 1
    while i < n and digits < 9 and 48 <= value[i] <= 57:
        span = span * 10 + (value[i] - 48)
        digits += 1
        i += 1
    if not digits:
        return 1
    return 1 if span < 1 else (1000 if span > 1000 else span)


cdef long long _ol_start_attr(_Node *node) except? -2:
    # A function of its own: a Python local in a nogil method makes it take the GIL to let go
    # of the local on every call, not only where the local is used.
    start = _start_number(_attr(node, "start"))
    return -1 if start is None else start


cdef str _language(_Node *node):
    m = _LANGUAGE.search(_attr(node, "class") or "")
    return m.group(1) if m and "`" not in m.group(1) else ""


cdef bint _is_katex_drawing(_Node *node) except -1:
    """KaTeX's katex-html after its katex-mathml (``_lexbor.is_katex_drawing``)."""
    cdef _Node *sibling = node.prev
    if "katex-html" not in (_attr(node, "class") or "").split():
        return False
    while sibling != NULL and sibling.type != _ELEMENT_NODE:
        sibling = sibling.prev
    return sibling != NULL and "katex-mathml" in (_attr(sibling, "class") or "").split()


cdef object _tex_of(_Node *node, int kind, _Buffer buf):
    """``(display, tex)`` for rendered math with a TeX annotation, else None (``tex_of``)."""
    cdef _Node *annotation
    cdef _Node *inner
    classes = (_attr(node, "class") or "").split()
    if "katex-display" in classes:
        display = True
    elif "katex" in classes:
        display = False
    elif kind == K_MATH:
        display = _attr(node, "display") == "block"
    else:
        return None
    annotation = _first_descendant(node, 0, K_ANNOTATION)
    if annotation == NULL:
        return None
    # Node.text(deep=True): the data of every text node below, decoded once.
    buf.length = 0
    inner = annotation.first_child
    while inner != NULL:
        if inner.local_name == _text_id:
            s = &(<_CharData *> inner).data
            if s.data != NULL:
                buf.add(s.data, s.length)
        inner = _next_in(inner, annotation, True)
    tex = _HTML_SPACE_RUN.sub(" ", no_markers(buf.text())).strip(" ")
    return display, tex


# -- the walk ------------------------------------------------------------------------------

# White-space state, as in _walk.
cdef enum:
    AT_START = 0
    AFTER_SPACE = 1
    AFTER_TEXT = 2
    AFTER_BREAK = 3

cdef enum:
    # Open elements with a frame: the root, MAX_DEPTH elements, and one being entered.
    _FRAME_SLOTS = 68
    _MAX_DEPTH = 64  # _walk.MAX_DEPTH, as a constant of C
    _MAX_TABLE_CELLS = 100000  # and _walk.MAX_TABLE_CELLS
assert _MAX_DEPTH == MAX_DEPTH and MAX_DEPTH + 2 <= _FRAME_SLOTS
assert _MAX_TABLE_CELLS == MAX_TABLE_CELLS


ctypedef struct _Cell:
    # A table cell: its text in the walk's ``texts``, and its colspan.
    size_t start, length
    long span

ctypedef struct _Row:
    size_t first, count  # its cells, in the walk's ``cells``

ctypedef struct _Frame:
    # An open element (``_walk._Frame``). Its text is the walk's buffer from ``start`` on, made
    # of the parts whose starts the part stack holds from byte ``parts`` on; ``flags`` are its children's
    # parent_tags. Tables and their parts keep rows and cells in the walk's arrays (``cells``,
    # ``rows``, ``texts``), from the offsets they hold on.
    _Node *node
    int info, kind, flags, parent_flags
    size_t start, parts
    # A table and its parts: where their cells, rows and cell texts start in the walk's
    # arrays, and a table's caption (in the cell texts).
    size_t cells, rows, texts, caption, caption_length
    long long counter, ol_next, pres_since, number
    bint numbered, has_ol_next, tail_code


cdef inline size_t _collapsed_run(unsigned char *o, size_t k, bint soft) noexcept nogil:
    """A collapsed white-space run written at ``o + k``: SOFT and a newline where the run held
    a newline outside inline context, else a space; returns the new end."""
    if soft:
        o[k] = _M0
        o[k + 1] = _M1
        o[k + 2] = _SOFT_3
        o[k + 3] = 10
        return k + 4
    o[k] = 32
    return k + 1


cdef class _Walk:
    """The walk over one message's tree.

    Its methods run without the GIL. What needs Python (images, titled links, ``<ol start>``,
    attribute values that are not ASCII, an element known only by its name, page noise, a line
    after a soft break that may start a block and is not ASCII) is rare: a walk with the GIL
    takes it for those, and a walk in a thread that has no GIL (``scratch.gilfree``) stops there
    instead (``scratch.bailed``), for the message to be
    converted again by a walk that has it (see :class:`BatchConverter`)."""
    cdef _Frame frames[_FRAME_SLOTS]
    cdef _Frame *top
    cdef int ws, content_depth
    cdef bint seen_content, busy
    # out: the text; tmp: an element's converted text; scratch: block text with soft breaks;
    # buf: a code block's or a formula's text; entries: the open elements' entries (one byte
    # each, its length the depth); parts: where each part of the open elements starts (size_t).
    cdef _Buffer out, tmp, scratch, buf, entries, parts
    # The open tables' cells (_Cell), rows (_Row) and cell texts.
    cdef _Buffer cells, rows, texts
    # A code block's info string (in lexbor's attribute, or in language_text).
    cdef const unsigned char *language
    cdef size_t language_length
    cdef bytes language_text

    def __cinit__(self):
        self.out = _Buffer()
        self.tmp = _Buffer()
        self.scratch = _Buffer()
        self.buf = _Buffer()
        self.entries = _Buffer()
        self.parts = _Buffer()
        self.cells = _Buffer()
        self.rows = _Buffer()
        self.texts = _Buffer()

    cdef void reset(self) noexcept nogil:
        cdef _Frame *root = &self.frames[0]
        memset(root, 0, sizeof(_Frame))
        root.info = K_ROOT
        root.kind = K_ROOT
        root.counter = 1
        self.top = root
        self.ws = AT_START
        self.content_depth = 0
        self.seen_content = False
        self.entries.length = 0
        self.parts.length = 0
        self.cells.length = 0
        self.rows.length = 0
        self.texts.length = 0
        self.out.length = 0
        self.scratch.bailed = False

    cdef void trim(self) noexcept nogil:
        self.out.trim()
        self.tmp.trim()
        self.scratch.trim()
        self.buf.trim()
        self.entries.trim()
        self.parts.trim()
        self.cells.trim()
        self.rows.trim()
        self.texts.trim()

    cdef inline bint bail(self) noexcept nogil:
        # True, and the walk stops, when it runs without the GIL; False: go on with it.
        if self.scratch.gilfree:
            self.scratch.bailed = True
            return True
        return False

    cdef int info(self, _Node *node) except -2 nogil:
        """``_info``, or -1 when the walk bails out."""
        cdef int info = _known_info(node)
        cdef size_t length = 0
        if info >= 0:
            return info
        if _large_ids_are_other and node.local_name >= _ID_CACHE:
            if _element_name(<void *> node, &length) == NULL:
                return B_DROPPED  # as _info
            return K_OTHER
        if self.bail():
            return -1
        with gil:
            info = _info(node)
        return info

    cdef int run(self, _Node *first) except -1 nogil:
        cdef _Node *node = first
        cdef int entered
        while node != NULL and not self.scratch.bailed:
            entered = -1
            if node.local_name == _text_id:
                if node.type == _TEXT_NODE:
                    self.text(node)
            elif node.type == _ELEMENT_NODE:
                entered = self.enter(node)
            if self.scratch.bailed:
                break
            if entered >= 0:
                if node.first_child != NULL:
                    self.entries.byte(<unsigned char> entered)
                    node = node.first_child
                    continue
                self.leave(entered)
            while True:
                if node.next != NULL:
                    node = node.next
                    break
                if self.entries.length == 0:
                    node = NULL
                    break
                node = node.parent
                self.entries.length -= 1
                self.leave(self.entries.data[self.entries.length])
        return 0

    # -- entering and leaving elements; an entry is has_frame | is_content << 1 ------------

    cdef int enter(self, _Node *node) except -2 nogil:
        cdef int info = self.info(node)
        cdef int kind = info & KIND_MASK
        cdef bint is_content
        cdef _Frame *frame
        cdef _Frame *new
        cdef int flags
        cdef long long counter = 1, number = 0
        cdef bint numbered = False
        cdef int done
        if info < 0 or info & B_DROPPED:
            return -1
        is_content = not (info & B_CHROME)
        if self.entries.length >= _MAX_DEPTH:
            self.content_depth += is_content
            return is_content << 1
        frame = self.top
        if kind == K_PRE:
            self.read_code_block(node)
            if not self.scratch.bailed:
                self.code_block(frame)
            return -1
        if kind == K_MATH or _might_be_math(node):
            done = self.enter_tex(node, kind, frame)
            if done > 0:
                return -1
            if done < 0:
                if self.bail():
                    return -1
                with gil:
                    if self.enter_math(node, kind, frame):
                        return -1
        if kind == K_IMG and self.bail():
            return -1
        flags = frame.flags
        if kind == K_LI:
            flags |= F_LI
        elif kind == K_B:
            flags |= F_B
        elif kind == K_I:
            flags |= F_I
        elif kind == K_DEL:
            flags |= F_DEL
        if info & B_INLINE_CTX or (kind == K_CAPTION and frame.kind == K_TABLE):
            flags |= F_INLINE
        elif info & B_NOFORMAT_CTX:
            flags |= F_NOFORMAT
        if kind == K_OL:
            counter = self.ol_start(node, frame)
            if self.scratch.bailed:
                return -1
        elif kind == K_LI and frame.kind == K_OL:
            numbered = True
            number = frame.counter
            frame.counter += 1
        if info & B_BLOCK:
            self.block_boundary(frame)
        if frame - self.frames + 1 >= _FRAME_SLOTS:
            with gil:
                raise RuntimeError("the walk has more open elements than MAX_DEPTH")
        new = frame + 1
        memset(new, 0, sizeof(_Frame))
        new.node = node
        new.info = info
        new.kind = kind
        new.flags = flags
        new.parent_flags = frame.flags
        new.start = self.out.length
        new.parts = self.parts.length
        new.counter = counter
        new.number = number
        new.numbered = numbered
        new.cells = self.cells.length
        new.rows = self.rows.length
        new.texts = self.texts.length
        self.top = new
        self.content_depth += is_content
        return 1 | (is_content << 1)

    cdef int enter_tex(self, _Node *node, int kind, _Frame *frame) except -2 nogil:
        """:meth:`enter_math` on bytes: 1 when the element is done, 0 when it is no math; -1,
        with nothing done, when Python's rules must decide (an attribute that is not ASCII)."""
        cdef const unsigned char *cls
        cdef size_t n
        cdef int display = -1, found
        cdef _Node *annotation = NULL
        if _ascii_attr(node, "class", 5, &cls, &n) < 0:
            return -1
        if kind != K_MATH and not _contains(cls, n, b"katex", 5):
            return 0
        if _has_class(cls, n, b"katex-display", 13):
            display = 1
        elif _has_class(cls, n, b"katex", 5):
            display = 0
        elif kind == K_MATH:
            display = _attr_is(node, "display", 7, b"block", 5)
            if display < 0:
                return -1
        if display >= 0:
            found = self.tex_annotation(node, &annotation)
            if found < 0:
                return -1
            if found:
                self.tex_into_buf(annotation)
                self.math_bytes(frame, display)
                return 1
        # A KaTeX drawing (katex-html) after its katex-mathml is left out.
        if not _has_class(cls, n, b"katex-html", 10):
            return 0
        annotation = node.prev
        while annotation != NULL and annotation.type != _ELEMENT_NODE:
            annotation = annotation.prev
        if annotation == NULL:
            return 0
        if _ascii_attr(annotation, "class", 5, &cls, &n) < 0:
            return -1
        return _has_class(cls, n, b"katex-mathml", 12)

    cdef int tex_annotation(self, _Node *top, _Node **found) except -2 nogil:
        """``_first_descendant(top, 0, K_ANNOTATION)`` (an <annotation> of TeX): 1 and the node
        in ``found``, 0 if there is none, -1 where Python must decide."""
        cdef _Node *node = top.first_child
        cdef const unsigned char *name
        cdef size_t length = 0
        cdef int info, tex
        while node != NULL:
            if node.type == _ELEMENT_NODE and node.local_name != _text_id:
                info = _known_info(node)
                if info < 0:
                    name = _element_name(<void *> node, &length)
                    if name != NULL and length == 10 and memcmp(name, b"annotation", 10) == 0:
                        info = K_ANNOTATION
                    elif _large_ids_are_other and node.local_name >= _ID_CACHE:
                        info = K_OTHER
                    else:
                        return -1
                if (info & KIND_MASK) == K_ANNOTATION:
                    tex = _attr_is(node, "encoding", 8, b"application/x-tex", 17)
                    if tex != 0:
                        found[0] = node
                        return tex
            node = _next_in(node, top, True)
        return 0

    cdef int tex_into_buf(self, _Node *annotation) except -1 nogil:
        # Node.text(deep=True) without markers, white-space runs made one space, stripped
        # (``tex_of``), into ``buf``.
        cdef _Node *inner = annotation.first_child
        cdef _Str *s
        cdef size_t i
        cdef bint pending = False
        cdef unsigned char c
        self.buf.length = 0
        while inner != NULL:
            if inner.local_name == _text_id:
                s = &(<_CharData *> inner).data
                if s.data != NULL:
                    self.buf.reserve(s.length)
                    i = 0
                    while i < s.length:
                        c = s.data[i]
                        if c == 0xEF and _is_marker(s.data + i, s.length - i):
                            i += 3
                            continue
                        if _is_space(c):
                            pending = True
                        else:
                            if pending and self.buf.length:
                                self.buf.data[self.buf.length] = 32
                                self.buf.length += 1
                            pending = False
                            self.buf.data[self.buf.length] = c
                            self.buf.length += 1
                        i += 1
            inner = _next_in(inner, annotation, True)
        return 0

    cdef int math_bytes(self, _Frame *frame, bint display) except -1 nogil:
        """:meth:`math` with the TeX in ``buf``."""
        cdef bint block = display and not frame.flags & (F_INLINE | F_NOFORMAT)
        self.seen_content = True
        self.tmp.length = 0
        if self.buf.length:
            if block:
                self.tmp.add(b"\n\n", 2)
            self.tmp.add(b"$$" if display else b"$", 2 if display else 1)
            self.tmp.add(self.buf.data, self.buf.length)
            self.tmp.add(b"$$" if display else b"$", 2 if display else 1)
            if block:
                self.tmp.add(b"\n\n", 2)
        if block:
            self.block_boundary(frame)
        elif self.tmp.length:
            self.ws = AFTER_TEXT
        self.add(self.tmp.data, self.tmp.length, False)
        frame.has_ol_next = False
        return 0

    cdef bint enter_math(self, _Node *node, int kind, _Frame *frame) except -1:
        """Rendered math as TeX, or a KaTeX drawing skipped: True when the element is done."""
        if kind == K_MATH or "katex" in (_attr(node, "class") or ""):
            math = _tex_of(node, kind, self.buf)
            if math is not None:
                self.buf.length = 0
                self.buf.add_str(math[1])
                self.math_bytes(frame, math[0])
                return True
            if _is_katex_drawing(node):
                return True
        return False

    cdef long long ol_start(self, _Node *node, _Frame *parent) except? -1 nogil:
        cdef long long number
        if _find_attr(node, "start", 5) != NULL:
            if self.bail():
                return 1
            with gil:
                number = _ol_start_attr(node)
            if number >= 0:
                return number
        # Numbering goes on after code blocks (see _walk.Walk._ol_start).
        if parent.has_ol_next and parent.pres_since:
            return parent.ol_next
        return 1

    cdef int leave(self, int entered) except -1 nogil:
        cdef _Frame *frame
        cdef _Frame *parent
        cdef int kind
        cdef size_t start
        self.content_depth -= entered >> 1
        if not entered & 1:
            return 0
        frame = self.top
        if frame.info & B_BLOCK:
            self.block_boundary(frame)
        parent = frame - 1
        self.top = parent
        # The frame's parts are now one text, out[start:], given to the parent below.
        start = frame.start
        self.parts.length = frame.parts
        kind = frame.kind
        if kind == K_OL:
            parent.has_ol_next = True
            parent.ol_next = frame.counter
            parent.pres_since = 0
        else:
            parent.has_ol_next = False
        if kind == K_CELL:
            self.leave_cell(frame, parent, start)
        elif frame.info & B_TABLE_STRUCT:
            self.leave_rows(frame, parent, kind)
        elif kind == K_CAPTION and parent.kind == K_TABLE:
            parent.caption = self.texts.length
            self.cell_text(start)
            parent.caption_length = self.texts.length - parent.caption
        elif kind == K_BR:
            self.out.length = start
            self.br(parent)
        elif self.convert(frame, start):
            # The text stays as it is, where it is.
            self.commit(start, frame.info & B_CODE_SPAN)
        else:
            self.out.length = start
            if self.tmp.length and kind == K_IMG:
                self.ws = AFTER_TEXT
                self.seen_content = True
            self.add(self.tmp.data, self.tmp.length, frame.info & B_CODE_SPAN)
        return 0

    cdef int cell_text(self, size_t start) except -1 nogil:
        """The text from ``start`` on as a table cell (``_cell``), moved to ``texts``."""
        _spaces_into(self.texts, self.out.data + start, self.out.length - start, True, True)
        self.out.length = start
        return 0

    cdef int leave_cell(self, _Frame *frame, _Frame *parent, size_t start) except -1 nogil:
        cdef _Cell cell
        cell.start = self.texts.length
        self.cell_text(start)
        cell.length = self.texts.length - cell.start
        if parent.kind == K_TR:
            cell.span = _colspan_of(frame.node)
            if cell.span < 0:
                if self.bail():
                    return 0
                with gil:
                    cell.span = _colspan(_attr(frame.node, "colspan"))
            self.cells.add(<const unsigned char *> &cell, sizeof(_Cell))
            return 0
        # A cell outside a row is text: " cell ".
        self.texts.length = cell.start
        start = self.out.length
        self.out.byte(32)
        self.out.add(self.texts.data + cell.start, cell.length)
        self.out.byte(32)
        return self.commit(start, False)

    cdef int leave_rows(self, _Frame *frame, _Frame *parent, int kind) except -1 nogil:
        """A row, a row group or a table closes: its rows go to the table around it, or it is
        laid out (``_table``), or, anywhere else, its cells' text is joined by spaces."""
        cdef _Row row
        cdef size_t start = self.out.length
        cdef size_t cells = self.cells.length // sizeof(_Cell)
        cdef size_t rows = self.rows.length // sizeof(_Row)
        if kind == K_TR:
            row.first = frame.cells // sizeof(_Cell)
            row.count = cells - row.first
            if parent.info & B_ROW_GROUP or parent.kind == K_TABLE:
                self.rows.add(<const unsigned char *> &row, sizeof(_Row))
                return 0
            self.join_cells(row.first, cells)
        elif kind != K_TABLE:  # a row group
            if parent.kind == K_TABLE:
                return 0  # its rows are the table's next ones
            self.join_rows(frame.rows // sizeof(_Row), rows)
        else:
            self.table_into(frame, frame.rows // sizeof(_Row), rows)
        self.cells.length = frame.cells
        self.rows.length = frame.rows
        self.texts.length = frame.texts
        return self.commit(start, False)

    cdef int join_cells(self, size_t first, size_t end) except -1 nogil:
        cdef _Cell *cells = <_Cell *> self.cells.data
        cdef size_t i
        for i in range(first, end):
            if i > first:
                self.out.byte(32)
            self.out.add(self.texts.data + cells[i].start, cells[i].length)
        return 0

    cdef int join_rows(self, size_t first, size_t end) except -1 nogil:
        cdef _Row *rows = <_Row *> self.rows.data
        cdef size_t i
        cdef bint any = False
        for i in range(first, end):
            if rows[i].count:
                if any:
                    self.out.byte(32)
                any = True
                self.join_cells(rows[i].first, rows[i].first + rows[i].count)
        return 0

    cdef int table_into(self, _Frame *table, size_t first, size_t end) except -1 nogil:
        """``_table``: the rows as a markdown table (cells spanning columns padded with empty
        ones), after the caption; as words in inline context or past MAX_TABLE_CELLS."""
        cdef _Row *rows = <_Row *> self.rows.data
        cdef _Cell *cells = <_Cell *> self.cells.data
        cdef _Cell *cell
        cdef size_t i, j, column, widest = 0, width
        cdef long k
        cdef bint any = False
        for i in range(first, end):
            width = 0
            for j in range(rows[i].first, rows[i].first + rows[i].count):
                width += cells[j].span
            if width > widest:
                widest = width
        if table.parent_flags & F_INLINE or widest * (end - first) > _MAX_TABLE_CELLS:
            # The caption and every cell's text, the empty ones left out, as one block.
            self.buf.length = 0
            if table.caption_length:
                self.buf.add(self.texts.data + table.caption, table.caption_length)
                any = True
            for i in range(first, end):
                for j in range(rows[i].first, rows[i].first + rows[i].count):
                    if cells[j].length:
                        if any:
                            self.buf.byte(32)
                        any = True
                        self.buf.add(self.texts.data + cells[j].start, cells[j].length)
            return _block_into(
                self.out, self.buf.data, self.buf.length, table.parent_flags, self.scratch
            )
        if table.caption_length:
            self.out.add(b"\n\n", 2)
            self.out.add(self.texts.data + table.caption, table.caption_length)
            self.out.add(b"\n\n", 2)
        if not widest:
            return 0
        self.out.add(b"\n\n", 2)
        for i in range(first, end):
            if i > first:
                self.out.byte(10)
            self.out.byte(124)
            column = 0
            for j in range(rows[i].first, rows[i].first + rows[i].count):
                cell = &cells[j]
                for k in range(cell.span):
                    if k == 0 and cell.length:
                        self.out.byte(32)
                        self.out.add(self.texts.data + cell.start, cell.length)
                    self.out.add(b" |", 2)
                    column += 1
            while column < widest:
                self.out.add(b" |", 2)
                column += 1
            if i == first:
                self.out.add(b"\n|", 2)
                for column in range(widest):
                    self.out.add(b" --- |", 6)
        self.out.add(b"\n\n", 2)
        return 0

    # -- adding text to the open element -----------------------------------------------------

    cdef int commit(self, size_t start, bint code) except -1 nogil:
        # out[start:] is a new part of the open element (``_walk.Walk._add``): tables keep only
        # rows and cells; a code span never touches a backtick.
        cdef _Frame *frame = self.top
        cdef unsigned char *data
        if self.out.length == start:
            return 0
        if frame.info & B_TABLE_STRUCT:
            self.out.length = start
            return 0
        data = self.out.data
        if (
            (code or frame.tail_code) and data[start] == 96
            and self.parts.length > frame.parts and data[start - 1] == 96
        ):
            self.out.reserve(1)
            data = self.out.data
            memmove(data + start + 1, data + start, self.out.length - start)
            data[start] = 32
            self.out.length += 1
        self.parts.add(<const unsigned char *> &start, sizeof(size_t))
        frame.tail_code = code and self.out.data[self.out.length - 1] == 96
        return 0

    cdef int add(self, const unsigned char *text, size_t length, bint code) except -1 nogil:
        cdef size_t start = self.out.length
        self.out.add(text, length)
        return self.commit(start, code)

    cdef int block_boundary(self, _Frame *frame) except -1 nogil:
        # The last part loses a trailing hard break and white space, or goes if nothing is left.
        cdef unsigned char *data = self.out.data
        cdef size_t first, end
        if self.parts.length > frame.parts and (self.ws == AFTER_SPACE or self.ws == AFTER_BREAK):
            first = (<size_t *> (self.parts.data + self.parts.length - sizeof(size_t)))[0]
            end = self.out.length
            if end - first >= 4 and data[end - 1] == 10 and _marker3(data + end - 4, _BREAK_3):
                end -= 4
            while end > first:
                if data[end - 1] == 32 or data[end - 1] == 10:
                    end -= 1
                elif end - first >= 3 and _marker3(data + end - 3, _SOFT_3):
                    end -= 3
                else:
                    break
            self.out.length = end
            if end == first:
                self.parts.length -= sizeof(size_t)
        self.ws = AT_START
        return 0

    # -- leaves ---------------------------------------------------------------------------

    cdef int text(self, _Node *node) except -1 nogil:
        cdef _Frame *frame = self.top
        cdef _Str *s = &(<_CharData *> node).data
        cdef const unsigned char *data = s.data
        cdef unsigned char *o
        cdef size_t n = s.length, i = 0, start, k, span
        cdef int pending = 0  # 0: no white space, 1: a run, 2: a run with a newline
        cdef bint inline, content = False
        cdef bint strip = self.ws != AFTER_TEXT
        cdef unsigned char c
        cdef int noise
        if frame.info & B_TABLE_STRUCT or data == NULL:
            return 0
        inline = frame.flags & (F_INLINE | F_NOFORMAT)
        self.out.reserve(n * 4 + 8)  # a run of one byte grows to four (SOFT + "\n") at most
        start = self.out.length
        o = self.out.data + start
        k = 0
        while i < n:
            c = data[i]
            if _is_space(c):
                if pending == 0:
                    pending = 1
                if c == 10:
                    pending = 2
                i += 1
            elif c == 0xEF and _is_marker(data + i, n - i):
                i += 3  # removed before collapsing: runs on both sides are one run
            else:
                if pending:
                    # One collapsed run; dropped at the start of the text unless after text.
                    if k or not strip:
                        k = _collapsed_run(o, k, pending == 2 and not inline)
                    pending = 0
                o[k] = c
                k += 1
                content = True
                i += 1
                # Words and the single spaces between them stay as they are: copied whole.
                span = _regular_span(data + i, n - i)
                if span:
                    memcpy(o + k, data + i, span)
                    k += span
                    i += span
        if pending and (k or not strip):
            k = _collapsed_run(o, k, pending == 2 and not inline)
        # Both kinds of page noise have a "/": other text needs no look.
        if content and self.content_depth == 0 and memchr(data, 47, n) != NULL:
            if self.bail():
                return 0
            with gil:
                noise = self.is_noise(data, n)
            if noise:
                return 0
        if k == 0:
            return 0
        c = o[k - 1]
        self.ws = AFTER_SPACE if c == 10 or c == 32 else AFTER_TEXT
        self.out.length = start + k
        self.commit(start, False)
        if content:
            frame.has_ol_next = False
            self.seen_content = True
        return 0

    cdef bint is_noise(self, const unsigned char *data, size_t n) except -1:
        """Whether top-level text is the page's edit counter or copy statistics."""
        raw = no_markers(_utf8(data, n))
        if not self.seen_content and is_regeneration_counter(raw):
            self.seen_content = True
            return True
        return is_copy_stats(raw)

    cdef int br(self, _Frame *frame) except -1 nogil:
        cdef bint inline = frame.flags & (F_INLINE | F_NOFORMAT)
        if self.ws == AT_START or self.ws == AFTER_BREAK or (inline and self.ws != AFTER_TEXT):
            return 0
        if inline:
            self.add(b" ", 1, False)
            self.ws = AFTER_SPACE
        else:
            self.block_boundary(frame)
            self.add(b"\xef\xb7\x91\n", 4, False)
            self.ws = AFTER_BREAK
        return 0

    cdef int read_code_block(self, _Node *pre) except -1 nogil:
        """A ``<pre>``'s exact text into ``buf`` (``_lexbor.code_block``), its language into
        ``language``."""
        cdef _Node *code = NULL
        cdef _Node *node = pre.first_child
        cdef bint started, descend
        cdef int info
        while node != NULL:  # the first <code> below, dropped elements included
            if node.type == _ELEMENT_NODE and node.local_name != _text_id:
                info = self.info(node)
                if info < 0:
                    return 0
                if info & B_CODE_TAG:
                    code = node
                    break
            node = _next_in(node, pre, True)
        started = code == NULL
        node = pre.first_child
        self.buf.length = 0
        while node != NULL:
            descend = False
            if node.local_name == _text_id:
                if started and node.type == _TEXT_NODE:
                    self.buf.add_text(node)
            elif node.type == _ELEMENT_NODE:
                info = self.info(node)
                if info < 0:
                    return 0
                if not info & B_DROPPED:
                    if not started and node == code:
                        started = True
                    if (info & KIND_MASK) == K_BR:
                        if started:
                            self.buf.byte(10)
                    else:
                        descend = True
            node = _next_in(node, pre, descend)
        while self.buf.length and (
            self.buf.data[self.buf.length - 1] == 32 or self.buf.data[self.buf.length - 1] == 9
            or self.buf.data[self.buf.length - 1] == 10
        ):
            self.buf.length -= 1
        self.language_length = 0
        if code != NULL:
            self.language_of(code)
        if self.language_length == 0 and not self.scratch.bailed:
            self.language_of(pre)
        return 0

    cdef int language_of(self, _Node *node) except -1 nogil:
        if _language_of(node, &self.language, &self.language_length) == 0:
            return 0
        if self.bail():
            return 0
        with gil:
            self.language_text = _language(node).encode("utf-8")
            self.language = self.language_text
            self.language_length = len(self.language_text)
        return 0

    cdef int code_block(self, _Frame *frame) except -1 nogil:
        self.seen_content = True
        self.tmp.length = 0
        _code_block_into(
            self.tmp, self.language, self.language_length, self.buf, frame.flags, self.scratch
        )
        if frame.flags & (F_INLINE | F_NOFORMAT):
            if self.tmp.length:
                self.ws = AFTER_TEXT
        else:
            self.block_boundary(frame)
        self.add(
            self.tmp.data, self.tmp.length,
            self.tmp.length and self.tmp.data[self.tmp.length - 1] == 96,
        )
        frame.pres_since += 1
        return 0

    # -- converters: ReferenceConverter.convert_<tag>, with parent_tags as bits --------------

    cdef int convert(self, _Frame *frame, size_t start) except -1 nogil:
        """The converter of the frame's tag (``ReferenceConverter.get_conv_fn``) on its text,
        ``out[start:]``, into ``tmp``; 1 when the text stays as it is."""
        cdef int kind = frame.kind
        cdef int flags = frame.parent_flags
        cdef const unsigned char *s = self.out.data + start
        cdef size_t n = self.out.length - start
        self.tmp.length = 0
        if kind == K_DIV or kind == K_CAPTION:
            _block_into(self.tmp, s, n, flags, self.scratch)
        elif kind == K_B:
            if flags & (F_NOFORMAT | F_B):
                return 1
            _wrap_into(self.tmp, s, n, b"**", 2)
        elif kind == K_I:
            if flags & (F_NOFORMAT | F_I):
                return 1
            _wrap_into(self.tmp, s, n, b"*", 1)
        elif kind == K_CODE:
            if flags & F_NOFORMAT:
                return 1
            _code_into(self.tmp, s, n)
        elif kind == K_A:
            if flags & F_NOFORMAT:
                return 1
            if _plain_link_into(self.tmp, frame.node, s, n):
                if self.bail():
                    return 0
                with gil:
                    _link_into(self.tmp, frame.node, s, n)
        elif kind == K_LI:
            _li_into(self.tmp, frame, s, n, flags, self.scratch)
        elif kind == K_OL or kind == K_UL:
            _list_into(self.tmp, s, n, flags, self.scratch)
        elif kind == K_HEADING:
            _heading_into(self.tmp, frame.info >> LEVEL_SHIFT, s, n, flags)
        elif kind == K_BLOCKQUOTE:
            _blockquote_into(self.tmp, s, n, flags, self.scratch)
        elif kind == K_DEL:
            if flags & (F_NOFORMAT | F_DEL):
                return 1
            _wrap_into(self.tmp, s, n, b"~~", 2)
        elif kind == K_IMG:
            with gil:  # as for links
                self.tmp.add_str(_image(frame.node, flags))
        elif kind == K_HR:
            if flags & F_INLINE:
                self.tmp.byte(32)
            else:
                self.tmp.add(b"\n\n---\n\n", 7)
        elif kind == K_Q:
            self.tmp.byte(34)
            self.tmp.add(s, n)
            self.tmp.byte(34)
        else:
            return 1
        return 0


# -- the converters' text rules, on UTF-8 ---------------------------------------------------
# ``reference``'s helpers on strings, here on bytes. The markers are three bytes each, and an
# EF byte only ever starts a character, so a marker is found by its bytes from either end.

cdef inline bint _marker3(const unsigned char *p, unsigned char third) noexcept nogil:
    return p[0] == _M0 and p[1] == _M1 and p[2] == third


cdef size_t _edge_start(const unsigned char *s, size_t n) noexcept nogil:
    """How many bytes at the start are ``_EDGE`` characters (space, newline, BREAK, SOFT)."""
    cdef size_t i = 0
    while i < n:
        if s[i] == 32 or s[i] == 10:
            i += 1
        elif i + 3 <= n and (_marker3(s + i, _BREAK_3) or _marker3(s + i, _SOFT_3)):
            i += 3
        else:
            break
    return i


cdef size_t _edge_end(const unsigned char *s, size_t first, size_t n) noexcept nogil:
    """Where the text ends once ``_EDGE`` characters after ``first`` are stripped."""
    cdef size_t e = n
    while e > first:
        if s[e - 1] == 32 or s[e - 1] == 10:
            e -= 1
        elif e - first >= 3 and (_marker3(s + e - 3, _BREAK_3) or _marker3(s + e - 3, _SOFT_3)):
            e -= 3
        else:
            break
    return e


cdef int _edge_into(_Buffer dst, const unsigned char *s, size_t n) except -1 nogil:
    """``_edge``: BREAK + newline if the run holds a BREAK, else a space if it is not empty."""
    cdef size_t i
    if n >= 3:
        for i in range(n - 2):
            if _marker3(s + i, _BREAK_3):
                return dst.add(b"\xef\xb7\x91\n", 4)
    if n:
        dst.byte(32)
    return 0


cdef int _wrap_into(
    _Buffer dst, const unsigned char *s, size_t n, const unsigned char *mark, size_t marks
) except -1 nogil:
    """``_wrap``: the marks around the text, its edge white space moved outside them."""
    cdef size_t first = _edge_start(s, n), end
    if first == n:
        return _edge_into(dst, s, n)
    end = _edge_end(s, first, n)
    _edge_into(dst, s, first)
    dst.add(mark, marks)
    dst.add(s + first, end - first)
    dst.add(mark, marks)
    return _edge_into(dst, s + end, n - end)


cdef size_t _longest_backticks(const unsigned char *s, size_t n) noexcept nogil:
    cdef size_t i, run = 0, longest = 0
    if memchr(s, 96, n) == NULL:
        return 0
    for i in range(n):
        if s[i] == 96:
            run += 1
            if run > longest:
                longest = run
        else:
            run = 0
    return longest


cdef int _code_into(_Buffer dst, const unsigned char *s, size_t n) except -1 nogil:
    """``convert_code`` outside a no-format context: a code span that no backtick breaks."""
    cdef size_t first = _edge_start(s, n), end, longest
    if first == n:
        return _edge_into(dst, s, n)
    end = _edge_end(s, first, n)
    longest = _longest_backticks(s + first, end - first)
    _edge_into(dst, s, first)
    dst.repeat(96, longest + 1)
    if longest:
        dst.byte(32)
    dst.add(s + first, end - first)
    if longest:
        dst.byte(32)
    dst.repeat(96, longest + 1)
    return _edge_into(dst, s + end, n - end)


cdef int _spaces_into(
    _Buffer dst, const unsigned char *s, size_t n, bint strip, bint cell
) except -1 nogil:
    """``_SPACE_RUN.sub(" ", text)``: each run of spaces, newlines and SOFT made one space;
    ``strip`` drops the runs at both ends, and ``cell`` escapes "|" as a table cell does."""
    cdef size_t i = 0, k = dst.length
    cdef bint pending = False
    cdef unsigned char c
    cdef unsigned char *o
    dst.reserve(2 * n)
    o = dst.data
    while i < n:
        c = s[i]
        if c == 32 or c == 10:
            pending = True
            i += 1
            continue
        if c == _M0 and i + 3 <= n and _marker3(s + i, _SOFT_3):
            pending = True
            i += 3
            continue
        if pending:
            if k > dst.length or not strip:
                o[k] = 32
                k += 1
            pending = False
        if cell and c == 124:
            o[k] = 92
            k += 1
        o[k] = c
        k += 1
        i += 1
    if pending and not strip:
        o[k] = 32
        k += 1
    dst.length = k
    return 0


cdef bint _may_start_block(const unsigned char *s, size_t n) noexcept nogil:
    """Whether a line starting at ``s`` might be markup (``_layout._BLOCK_FIRST`` or a decimal
    digit, as str.isdecimal, so a non-ASCII one counts too)."""
    cdef unsigned char c
    cdef Py_UCS4 cp
    if n == 0:
        return False
    c = s[0]
    if c < 0x80:
        return c in b"-+*#>`~<=_0123456789"
    if c >= 0xF0 and n >= 4:
        cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F)
    elif c >= 0xE0 and n >= 3:
        cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F)
    elif c >= 0xC0 and n >= 2:
        cp = ((c & 0x1F) << 6) | (s[1] & 0x3F)
    else:
        return True  # not UTF-8 that this module wrote: the exact rules decide
    return _is_decimal(cp)


cdef int _soft_breaks_into(_Buffer dst, const unsigned char *s, size_t n) except -1 nogil:
    """``_layout.soft_breaks``: a soft break is a newline, or a space where the next line would
    start a block (:func:`_interrupts`). A line that is not ASCII goes, with the whole text,
    through the reference's patterns (Unicode digits, case folding)."""
    cdef size_t i = 0, k, mark = dst.length
    cdef int space
    cdef unsigned char *o
    dst.reserve(n)
    o = dst.data
    k = dst.length
    while i < n:
        if s[i] == _M0 and i + 3 <= n and _marker3(s + i, _SOFT_3):
            if i + 4 <= n and s[i + 3] == 10:
                # A backslash before a line end would make a hard break out of literal text.
                space = i and s[i - 1] == 92
                if not space and _may_start_block(s + i + 4, n - i - 4):
                    space = _line_interrupts(s + i + 4, n - i - 4)
                    if space < 0:
                        dst.length = mark
                        if dst.gilfree:
                            dst.bailed = True
                            return 0
                        with gil:
                            dst.add_str(soft_breaks(_utf8(s, n)))
                        return 0
                o[k] = 32 if space else 10
                k += 1
                i += 4
            else:
                i += 3
        else:
            o[k] = s[i]
            k += 1
            i += 1
    dst.length = k
    return 0


cdef int _line_interrupts(const unsigned char *p, size_t left) noexcept nogil:
    """Whether the line at ``p`` (after a soft break) starts a block: ``_INTERRUPTS.match`` or
    ``_WHOLE_LINE_BLOCK.fullmatch`` of it, BREAK markers and spaces stripped at its end; -1
    when it is not ASCII (or holds a marker), which the patterns decide."""
    cdef const unsigned char *end = <const unsigned char *> memchr(p, 10, left)
    cdef size_t m = left if end == NULL else <size_t> (end - p), i
    if end != NULL and m >= 3 and _marker3(p + m - 3, _SOFT_3):
        m -= 3  # the next soft break ends this line
    while m:
        if p[m - 1] == 32:
            m -= 1
        elif m >= 3 and _marker3(p + m - 3, _BREAK_3):
            m -= 3
        else:
            break
    for i in range(m):
        if p[i] >= 0x80:
            return -1
    return _interrupts(p, m)


cdef inline bint _blank_or_end(const unsigned char *p, size_t i, size_t m) noexcept nogil:
    # (?:[ \t]|$) at i
    return i == m or p[i] == 32 or p[i] == 9


cdef bint _interrupts(const unsigned char *p, size_t m) noexcept nogil:
    """The two patterns of ``_layout.soft_breaks`` on an ASCII line (ASCII case folding is
    the patterns' IGNORECASE on it)."""
    cdef unsigned char c = p[0] if m else 0
    cdef size_t i = 0, marks = 0
    if m == 0:
        return False
    if (c == 45 or c == 43 or c == 42) and _blank_or_end(p, 1, m):
        return True  # a list item: -, + or *
    if 48 <= c <= 57:
        while i < m and 48 <= p[i] <= 57:
            i += 1
        # \d{1,9}[.)] then a blank or the end
        return i <= 9 and i < m and (p[i] == 46 or p[i] == 41) and _blank_or_end(p, i + 1, m)
    if c == 35:
        while i < m and p[i] == 35:
            i += 1
        return i <= 6 and _blank_or_end(p, i, m)  # an ATX heading
    if c == 62:
        return True  # a block quote
    if m >= 3 and (memcmp(p, b"```", 3) == 0 or memcmp(p, b"~~~", 3) == 0):
        return True
    if c == 60:
        return _html_block_start(p, m)
    if c == 61 or c == 45:  # =+[ \t]* and -+[ \t]*: a setext underline
        while i < m and p[i] == c:
            i += 1
        while i < m and (p[i] == 32 or p[i] == 9):
            i += 1
        if i == m:
            return True
    if c == 45 or c == 42 or c == 95:  # (?:[-*_][ \t]*){3,}: a thematic break
        for i in range(m):
            if p[i] == 45 or p[i] == 42 or p[i] == 95:
                marks += 1
            elif p[i] != 32 and p[i] != 9:
                return False
        return marks >= 3
    return False


cdef bint _html_block_start(const unsigned char *p, size_t m) noexcept nogil:
    """The HTML alternatives of ``_INTERRUPTS`` at a "<" (CommonMark's HTML blocks 1-6)."""
    cdef size_t j = 1, k
    cdef bint closing = False
    cdef unsigned char name[12]
    if m >= 4 and memcmp(p, b"<!--", 4) == 0:
        return True
    if m >= 2 and p[1] == 63:  # <?
        return True
    if m >= 3 and p[1] == 33 and _is_alpha(p[2]):
        return True  # <!x
    if m >= 9 and p[1] == 33 and p[2] == 91 and _lower_equals(p + 3, b"cdata[", 6):
        return True
    if j < m and p[j] == 47:
        closing = True
        j += 1
    k = j
    while k < m and k - j < 11 and _is_alnum(p[k]):
        name[k - j] = _lower(p[k])
        k += 1
    if k == j or (k < m and _is_alnum(p[k])):
        return False  # no name, or longer than any in the lists
    if not closing and _named(name, k - j, _RAW_TAGS) and (
        k == m or p[k] == 32 or p[k] == 9 or p[k] == 62
    ):
        return True  # <script, <pre, <style, <textarea
    return _named(name, k - j, _BLOCK_TAGS) and (
        k == m or p[k] == 32 or p[k] == 9 or p[k] == 62
        or (p[k] == 47 and k + 1 < m and p[k + 1] == 62)
    )


cdef bint _lower_equals(const unsigned char *p, const unsigned char *lower, size_t n) noexcept nogil:
    cdef size_t i
    for i in range(n):
        if _lower(p[i]) != lower[i]:
            return False
    return True


cdef bint _named(const unsigned char *name, size_t n, const unsigned char *names) noexcept nogil:
    """Whether ``name`` (lower case) is one of ``names``, "|name|name|…|"."""
    cdef const unsigned char *p = names
    cdef const unsigned char *next
    while p[0] and p[1]:
        next = <const unsigned char *> strchr(<const char *> p + 1, 124)
        if next == NULL:
            return False
        if <size_t> (next - p - 1) == n and memcmp(p + 1, name, n) == 0:
            return True
        p = next
    return False


def _tag_list(str alternatives) -> bytes:
    # "a|h[1-6]|b" as b"|a|h1|…|h6|b|", the lists of _layout's pattern.
    names = []
    for name in alternatives.split("|"):
        if name == "h[1-6]":
            names.extend(f"h{i}" for i in range(1, 7))
        else:
            assert name.isalpha() and name.islower() and len(name) <= 11, name
            names.append(name)
    return ("|" + "|".join(names) + "|").encode("ascii")


cdef bytes _BLOCK_TAGS_LIST = _tag_list(_HTML_BLOCK_TAGS)
cdef bytes _RAW_TAGS_LIST = _tag_list("script|pre|style|textarea")
cdef const unsigned char *_BLOCK_TAGS = _BLOCK_TAGS_LIST
cdef const unsigned char *_RAW_TAGS = _RAW_TAGS_LIST
# The patterns these rules copy; a test compares the two on generated lines.
assert _INTERRUPTS.pattern.count("script|pre|style|textarea") == 1


cdef bint _has_soft(const unsigned char *s, size_t n) noexcept nogil:
    return _has_marker(s, n, _SOFT_3, _SOFT_3)


cdef bint _has_marker(
    const unsigned char *s, size_t n, unsigned char first, unsigned char last
) noexcept nogil:
    """Whether ``s`` holds a marker whose third byte is from ``first`` to ``last``."""
    cdef const unsigned char *p = s
    cdef const unsigned char *end = s + n
    while True:
        p = <const unsigned char *> memchr(p, _M0, end - p)
        if p == NULL:
            return False
        if end - p >= 3 and p[1] == _M1 and first <= p[2] <= last:
            return True
        p += 1


cdef const unsigned char *_block_text(
    const unsigned char *s, size_t n, _Buffer scratch, size_t *length
) except NULL nogil:
    """``_block_text``: soft breaks resolved (in ``scratch`` if there are any), then white
    space stripped at both ends; returns the start, and the length in ``length``."""
    cdef size_t first = 0
    if _has_soft(s, n):
        scratch.length = 0
        _soft_breaks_into(scratch, s, n)
        s = scratch.data
        n = scratch.length
    while first < n and (s[first] == 32 or s[first] == 10):
        first += 1
    while n > first and (s[n - 1] == 32 or s[n - 1] == 10):
        n -= 1
    length[0] = n - first
    return s + first if n > first else <const unsigned char *> b""


cdef int _block_into(
    _Buffer dst, const unsigned char *s, size_t n, int flags, _Buffer scratch
) except -1 nogil:
    cdef size_t mark = dst.length, length
    cdef const unsigned char *text
    if flags & F_INLINE:
        dst.byte(32)
        _spaces_into(dst, s, n, True, False)
        if dst.length == mark + 1:
            dst.length = mark
        else:
            dst.byte(32)
        return 0
    text = _block_text(s, n, scratch, &length)
    if length:
        dst.add(b"\n\n", 2)
        dst.add(text, length)
        dst.add(b"\n\n", 2)
    return 0


cdef int _blockquote_into(
    _Buffer dst, const unsigned char *s, size_t n, int flags, _Buffer scratch
) except -1 nogil:
    cdef size_t length, i, line, j
    cdef const unsigned char *text
    if flags & F_INLINE:
        return _block_into(dst, s, n, flags, scratch)
    text = _block_text(s, n, scratch, &length)
    if not length:
        return 0
    dst.add(b"\n\n", 2)
    line = 0
    for i in range(length + 1):
        if i == length or text[i] == 10:
            if line:
                dst.byte(10)
            j = line
            while j < i and text[j] == 32:
                j += 1
            if j < i:
                dst.add(b"> ", 2)
                dst.add(text + line, i - line)
            else:
                dst.byte(62)
            line = i + 1
    return dst.add(b"\n\n", 2)


cdef int _heading_into(_Buffer dst, int level, const unsigned char *s, size_t n, int flags) except -1 nogil:
    cdef size_t mark = dst.length, before
    if flags & F_INLINE:
        dst.byte(32)
    else:
        dst.add(b"\n\n", 2)
        dst.repeat(35, level)
        dst.byte(32)
    before = dst.length
    _spaces_into(dst, s, n, True, False)
    if dst.length == before:
        dst.length = mark
    elif flags & F_INLINE:
        dst.byte(32)
    else:
        dst.add(b"\n\n", 2)
    return 0


cdef int _list_into(
    _Buffer dst, const unsigned char *s, size_t n, int flags, _Buffer scratch
) except -1 nogil:
    cdef size_t first = 0
    if flags & F_INLINE:
        return _block_into(dst, s, n, flags, scratch)
    while first < n and s[first] == 10:
        first += 1
    while n > first and s[n - 1] == 10:
        n -= 1
    if n == first:
        return 0
    if flags & F_LI:
        dst.byte(10)
        dst.add(s + first, n - first)
        return dst.byte(10)
    dst.add(b"\n\n", 2)
    dst.add(s + first, n - first)
    return dst.add(b"\n\n", 2)


cdef int _li_into(
    _Buffer dst, _Frame *frame, const unsigned char *s, size_t n, int flags, _Buffer scratch
) except -1 nogil:
    cdef size_t length, i, line, indent
    cdef const unsigned char *text
    cdef char marker[32]
    cdef int marker_length
    if flags & F_INLINE:
        return _block_into(dst, s, n, flags, scratch)
    text = _block_text(s, n, scratch, &length)
    if not length:
        return 0
    if frame.numbered:
        marker_length = snprintf(marker, sizeof(marker), "%lld.", frame.number)
    else:
        marker[0] = 45
        marker_length = 1
    indent = marker_length + 1
    dst.add(<unsigned char *> marker, marker_length)
    dst.byte(32)
    line = 0
    for i in range(length + 1):
        if i == length or text[i] == 10:
            if line:
                dst.byte(10)
                if i > line:
                    dst.repeat(32, indent)
            dst.add(text + line, i - line)
            line = i + 1
    return dst.byte(10)


cdef inline bint _scheme_url(const unsigned char *u, size_t n) noexcept nogil:
    """``_SCHEME_URL.fullmatch`` on ASCII: a scheme of 2 to 32 characters, then no white space,
    "<" or ">"."""
    cdef size_t i, colon = 0
    cdef unsigned char c
    if n < 3 or not _is_alpha(u[0]):
        return False
    for i in range(1, n):
        c = u[i]
        if c == 58:
            colon = i
            break
        if not (_is_alnum(c) or c in b"+.-"):
            return False
    if colon < 2 or colon > 32:
        return False
    for i in range(colon + 1, n):
        if _is_py_space(u[i]) or u[i] == 60 or u[i] == 62:
            return False
    return True


cdef int _plain_link_into(
    _Buffer dst, _Node *node, const unsigned char *s, size_t n
) except -1 nogil:
    """:func:`_link_into` for a link without a title whose target is ASCII (_destination and
    the autolink rule on bytes), into an empty ``dst``; 1, with nothing written, for any
    other link."""
    cdef size_t first = _edge_start(s, n), end, length = 0, a = 0, b, i
    cdef void *attr
    cdef const unsigned char *href = NULL
    cdef bint angle = False
    cdef long depth = 0
    cdef unsigned char c
    if first == n:
        return _edge_into(dst, s, n)
    if _find_attr(node, "title", 5) != NULL:
        return 1
    attr = _find_attr(node, "href", 4)
    if attr != NULL:
        href = _attr_value(attr, &length)
    if href == NULL:
        length = 0
    for i in range(length):
        if href[i] >= 0x80:
            return 1  # a marker, or text whose white space Unicode decides
    end = _edge_end(s, first, n)
    _edge_into(dst, s, first)
    b = length
    while a < b and _is_space(href[a]):
        a += 1
    while b > a and _is_space(href[b - 1]):
        b -= 1
    if a == b:
        dst.add(s + first, end - first)
        return _edge_into(dst, s + end, n - end)
    if length == end - first and memcmp(href, s + first, length) == 0 and _scheme_url(href, length):
        dst.byte(60)
        dst.add(href, length)
        dst.byte(62)
        return _edge_into(dst, s + end, n - end)
    for i in range(a, b):
        c = href[i]
        if c == 32 or c == 60 or c == 62:
            angle = True
        elif c == 40:
            depth += 1
        elif c == 41:
            depth -= 1
            if depth < 0:
                angle = True
    angle = angle or depth != 0
    dst.byte(91)
    dst.add(s + first, end - first)
    dst.add(b"](", 2)
    if angle:
        dst.byte(60)
    for i in range(a, b):
        c = href[i]
        if c == 9 or c == 10 or c == 13 or c == 12:
            continue
        if angle and c == 60:
            dst.add(b"%3C", 3)
        elif angle and c == 62:
            dst.add(b"%3E", 3)
        else:
            dst.byte(c)
    if angle:
        dst.byte(62)
    dst.byte(41)
    return _edge_into(dst, s + end, n - end)


cdef int _link_into(_Buffer dst, _Node *node, const unsigned char *s, size_t n) except -1:
    """``convert_a`` outside a no-format context."""
    cdef size_t first = _edge_start(s, n), end
    cdef bytes target
    if first == n:
        return _edge_into(dst, s, n)
    end = _edge_end(s, first, n)
    href = _attr(node, "href")
    _edge_into(dst, s, first)
    if not href or not href.strip(" \t\n\r\f"):
        dst.add(s + first, end - first)
        return _edge_into(dst, s + end, n - end)
    title = _attr(node, "title")
    target = href.encode("utf-8")
    if (
        len(target) == end - first and memcmp(<const unsigned char *> target, s + first, end - first) == 0
        and not title and _SCHEME_URL.fullmatch(href)
    ):
        dst.byte(60)
        dst.add(target, len(target))
        dst.byte(62)
    else:
        dst.byte(91)
        dst.add(s + first, end - first)
        dst.add(b"](", 2)
        dst.add_str(_destination(href) + _title(title))
        dst.byte(41)
    return _edge_into(dst, s + end, n - end)


cdef int _code_block_into(
    _Buffer dst, const unsigned char *language, size_t language_length, _Buffer code, int flags,
    _Buffer scratch
) except -1 nogil:
    """``convert_pre``: a fence longer than any backtick run in the code, every line marked."""
    cdef size_t i, fence, n = code.length
    cdef const unsigned char *s = code.data
    cdef const unsigned char *end = s + n
    cdef const unsigned char *line_end
    if flags & (F_INLINE | F_NOFORMAT):
        scratch.length = 0
        scratch.add(s, n)
        for i in range(n):
            if scratch.data[i] == 10:
                scratch.data[i] = 32
        if flags & F_NOFORMAT:
            return dst.add(scratch.data, n)
        return _code_into(dst, scratch.data, n)
    if not n:
        return 0
    fence = max(3, _longest_backticks(s, n) + 1)
    dst.add(b"\n\n", 2)
    dst.marker(_CODE_3)
    dst.repeat(96, fence)
    dst.add(language, language_length)
    dst.byte(10)
    dst.marker(_CODE_3)
    while True:
        line_end = <const unsigned char *> memchr(s, 10, end - s)
        if line_end == NULL:
            dst.add(s, end - s)
            break
        dst.add(s, line_end - s + 1)
        dst.marker(_CODE_3)
        s = line_end + 1
    dst.byte(10)
    dst.marker(_CODE_3)
    dst.repeat(96, fence)
    return dst.add(b"\n\n", 2)


# -- converters that work on Python strings: attributes, formulas --------------------------

cdef enum:
    # The rules _bytes_rule applies.
    _SPACES
    _EDGE_RUN
    _BLOCK_TEXT
    _WRAP


cdef str _bytes_rule(str text, int rule, int flag, bytes mark=None):
    # The rules on bytes, for str callers: the image's alt text, the tests.
    cdef bytes data = text.encode("utf-8")
    cdef _Buffer dst = _Buffer()
    cdef _Buffer scratch = _Buffer()
    cdef const unsigned char *s
    cdef size_t length
    if rule == _SPACES:
        _spaces_into(dst, data, len(data), flag, False)
    elif rule == _EDGE_RUN:
        _edge_into(dst, data, len(data))
    elif rule == _BLOCK_TEXT:
        s = _block_text(data, len(data), scratch, &length)
        dst.add(s, length)
    else:
        _wrap_into(dst, data, len(data), mark, len(mark))
    return dst.text()


cdef tuple _split_edges(str text):
    cdef bytes data = text.encode("utf-8")
    cdef size_t first = _edge_start(data, len(data)), end
    if first == len(data):
        return text, "", ""
    end = _edge_end(data, first, len(data))
    return _utf8(data, first), _utf8(data[first:end], end - first), _utf8(data[end:], len(data) - end)


cdef str _spaces(str text, bint strip):
    return _bytes_rule(text, _SPACES, strip)


def _helpers():
    """The compiled helpers on strings, for the tests that compare them with the reference's."""
    return {
        "_edge": lambda run: _bytes_rule(run, _EDGE_RUN, 0),
        "_split_edges": lambda text: _split_edges(text),
        "_wrap": lambda text, mark: _bytes_rule(text, _WRAP, 0, mark.encode("utf-8")),
        "_block_text": lambda text: _bytes_rule(text, _BLOCK_TEXT, 0),
        "_spaces": lambda text: _spaces(text, False),
    }


cdef str _image(_Node *node, int flags):
    alt = _spaces(_URL_CONTROL.sub(" ", _attr(node, "alt") or ""), True)
    src = (_attr(node, "src") or "").strip(" \t\n\r\f")
    if not src or flags & F_NOFORMAT:
        return alt
    return f"![{alt}]({_destination(src)}{_title(_attr(node, 'title'))})"


# -- the module's API ----------------------------------------------------------------------

def bind(str selectolax_path, object create_node, object parse_fragment):
    """Find lexbor's functions in selectolax's extension and learn the tag ids; check the layout.

    :param selectolax_path: the file of ``selectolax.lexbor``.
    :param create_node: ``name -> LexborNode``, each call in a new document.
    :param parse_fragment: ``html -> LexborNode`` (the first top-level node).
    :raises RuntimeError: saying what does not match; the engine is then unusable.
    """
    global _first_attr, _next_attr, _attr_name, _attr_value, _element_name, _text_id, _bound
    global _large_ids_are_other
    global _document_clean, _parser_clean, _parse_fragment, _document, _parser, _div_id, _html_ns
    global _document_create, _document_destroy, _parser_create, _parser_init, _parser_destroy
    cdef bytes path = selectolax_path.encode()
    cdef void *handle = convkit_dlopen(path)
    cdef _Node *node
    cdef _Node *other
    cdef size_t length = 0
    cdef const unsigned char *value
    if handle == NULL:
        raise RuntimeError(f"cannot open {selectolax_path}")
    symbols = {}
    for name in (
        "lxb_dom_element_first_attribute_noi", "lxb_dom_element_next_attribute_noi",
        "lxb_dom_attr_qualified_name", "lxb_dom_attr_value_noi",
        "lxb_dom_element_qualified_name",
        "lxb_html_document_create", "lxb_html_document_clean", "lxb_html_document_destroy",
        "lxb_html_parser_create", "lxb_html_parser_destroy",
        "lxb_html_parser_init", "lxb_html_parser_clean", "lxb_html_parse_fragment_by_tag_id",
    ):
        address = <uintptr_t> convkit_dlsym(handle, name.encode())
        if not address:
            raise RuntimeError(f"selectolax does not export {name}")
        symbols[name] = address
    _first_attr = <_first_attr_f> <uintptr_t> symbols["lxb_dom_element_first_attribute_noi"]
    _next_attr = <_next_attr_f> <uintptr_t> symbols["lxb_dom_element_next_attribute_noi"]
    _attr_name = <_attr_str_f> <uintptr_t> symbols["lxb_dom_attr_qualified_name"]
    _attr_value = <_attr_str_f> <uintptr_t> symbols["lxb_dom_attr_value_noi"]
    _element_name = <_element_name_f> <uintptr_t> symbols["lxb_dom_element_qualified_name"]
    _document_create = <_create_f> <uintptr_t> symbols["lxb_html_document_create"]
    _document_destroy = <_destroy_f> <uintptr_t> symbols["lxb_html_document_destroy"]
    _parser_create = <_create_f> <uintptr_t> symbols["lxb_html_parser_create"]
    _parser_init = <_init_f> <uintptr_t> symbols["lxb_html_parser_init"]
    _parser_destroy = <_destroy_f> <uintptr_t> symbols["lxb_html_parser_destroy"]
    _document_clean = <_clean_f> <uintptr_t> symbols["lxb_html_document_clean"]
    _parser_clean = <_clean_f> <uintptr_t> symbols["lxb_html_parser_clean"]
    _parse_fragment = <_parse_fragment_f> <uintptr_t> symbols["lxb_html_parse_fragment_by_tag_id"]
    if _document == NULL:
        _document = _document_create()
    if _parser == NULL:
        _parser = _parser_create()
        if _parser != NULL and _parser_init(_parser):
            _parser = NULL  # a parser that failed to initialise is not used (a small leak)
    if _document == NULL or _parser == NULL:
        raise RuntimeError("lexbor could not create a document and a parser")

    # The tree: every pointer the walk follows, against selectolax's own accessors.
    root = parse_fragment('<p class="k" data-x>a<b>b</b>c</p><!--d-->e')
    node = _node_of(root)
    p, text_a, bold = root, root.child, root.child.next
    checks = [
        node.type == _ELEMENT_NODE,
        node.first_child == _node_of(text_a),
        node.first_child.next == _node_of(bold),
        node.last_child == _node_of(root.last_child),
        _node_of(bold).parent == node,
        _node_of(bold).prev == _node_of(text_a),
        node.next == _node_of(p.next),
        node.first_child.type == _TEXT_NODE,
        node.next.type != _ELEMENT_NODE and node.next.type != _TEXT_NODE,
        node.next.next.type == _TEXT_NODE,
        node.next.next.local_name == node.first_child.local_name,
    ]
    if not all(checks):
        raise RuntimeError(f"lexbor node layout differs: checks {checks}")
    _text_id = node.first_child.local_name
    s = &(<_CharData *> node.first_child).data
    if s.length != 1 or s.data == NULL or s.data[0] != b"a":
        raise RuntimeError("lexbor text layout differs")
    if _attr(node, "class") != "k" or _attr(node, "data-x") != "" or _attr(node, "id") is not None:
        raise RuntimeError("lexbor attribute functions do not behave as expected")
    value = _element_name(<void *> node, &length)
    if value == NULL or value[:length] != b"p":
        raise RuntimeError("lexbor element name function does not behave as expected")

    # Tag ids, from elements of two documents: an id the same in both is the tag's for good.
    for i in range(_ID_CACHE):
        _info_by_id[i] = -1
    _large_ids_are_other = False
    learned = set()
    for name in _LEARNED_NAMES:
        first, second = create_node(name), create_node(name)
        node, other = _node_of(first), _node_of(second)
        if node.type != _ELEMENT_NODE or first.tag != name:
            raise RuntimeError(f"cannot create a <{name}> element")
        if node.local_name == other.local_name and node.local_name < _ID_CACHE:
            if node.local_name == _text_id:
                raise RuntimeError(f"<{name}> has the id of text")
            _info_by_id[node.local_name] = _info_of(name)
            learned.add(name)
    # Other names are learned when first met (_info), which is right only if every id under
    # _ID_CACHE is one of lexbor's own: an element of a name it does not know has a larger id.
    for name in ("convkit-probe", "x-y"):
        probe = create_node(name)  # kept alive while its node is read
        node = _node_of(probe)
        if node.local_name < _ID_CACHE:
            raise RuntimeError(f"<{name}> has the small tag id {node.local_name}")
    _large_ids_are_other = (
        _TABLE_NAMES - {"annotation"} <= learned and _info_of("annotation") == K_ANNOTATION
    )
    # The fragment context selectolax parses messages in: a <div> of the HTML namespace.
    div = create_node("div")  # kept alive: its document is freed with it
    node = _node_of(div)
    _div_id, _html_ns = node.local_name, node.ns
    del div
    _bound = True


cdef _Walk _spare = None


cdef _Walk _take_walk():
    # One walk's buffers serve every message; a new walk only if that one is in use.
    global _spare
    cdef _Walk w = _spare
    if w is None or w.busy:
        w = _Walk()
        if _spare is None:
            _spare = w
    w.busy = True
    w.reset()
    return w


cdef void _give_back(_Walk w) noexcept:
    w.trim()
    w.busy = False


def walk(first) -> str:
    """The walk's text for a parsed fragment's first node, before :func:`finish`."""
    if not _bound:
        raise RuntimeError("convkit.markdown._fast.bind() has not succeeded")
    cdef _Walk w = _take_walk()
    try:
        w.run(_node_of(first))
        return w.out.text()
    finally:
        _give_back(w)


def convert(str html) -> str:
    """Convert one HTML fragment (a message) to markdown; identical to the reference engine."""
    global _document_busy
    if not _bound:
        raise RuntimeError("convkit.markdown._fast.bind() has not succeeded")
    html = clean_input(html)
    if too_deep(html):
        return plain_text(html)
    # As selectolax parses a fragment (UTF-8, undecodable characters dropped, context <div>),
    # in the module's own document, cleaned first: the tree lives until the next conversion.
    cdef bytes data = html.encode("utf-8", "ignore")
    cdef void *document
    cdef void *parser
    cdef _Node *wrapper
    cdef _Walk w
    cdef bint shared = not _document_busy
    if shared:
        _document_busy = True
        document, parser = _document, _parser
        _document_clean(document)
        _parser_clean(parser)
    else:
        _own_document(&document, &parser)
    cdef const unsigned char *raw = data
    cdef size_t size = len(data)
    try:
        # Without the GIL: a thread that converts meanwhile takes a document of its own (see
        # _document_busy), and another thread's Python (a tokenizer's batches, the executor's
        # result reader) runs during the parse.
        with nogil:
            wrapper = _parse_fragment(parser, document, _div_id, _html_ns, raw, size)
        if wrapper == NULL:
            raise RuntimeError("lexbor could not parse the message")
        if wrapper.first_child == NULL:
            return ""
        w = _take_walk()
        try:
            w.run(wrapper.first_child)
            _finish_into(w.tmp, w.out.data, w.out.length, w.scratch)
            text = w.tmp.text()
        finally:
            _give_back(w)
        if shared and len(data) > _KEEP_DOCUMENT_BELOW:
            _renew_document()
        return text
    finally:
        if shared:
            _document_busy = False
        else:
            _parser_destroy(parser)
            _document_destroy(document)


cdef int _own_document(void **document, void **parser) except -1:
    """A document and a parser for one conversion, while the shared ones are in use."""
    document[0] = _document_create()
    parser[0] = _parser_create()
    if document[0] == NULL or parser[0] == NULL or _parser_init(parser[0]):
        if parser[0] != NULL:
            _parser_destroy(parser[0])
        if document[0] != NULL:
            _document_destroy(document[0])
        raise MemoryError("lexbor could not create a document and a parser")
    return 0


cdef enum:
    # A cleaned document keeps the memory its largest tree took (about 30 times the HTML): after
    # a message this large it is replaced, so that one huge message does not stay resident.
    _KEEP_DOCUMENT_BELOW = 1 << 20


cdef void _renew_document() except *:
    global _document
    cdef void *fresh = _document_create()
    if fresh == NULL:
        raise MemoryError("lexbor could not create a document")
    _document_destroy(_document)
    _document = fresh


# -- converting lists of messages on a thread without the GIL -------------------------------

cdef extern from *:
    """
    #if defined(_WIN32)
    #include <windows.h>
    static double convkit_seconds(void) {
        LARGE_INTEGER count, frequency;
        QueryPerformanceCounter(&count);
        QueryPerformanceFrequency(&frequency);
        return (double) count.QuadPart / (double) frequency.QuadPart;
    }
    #else
    #include <time.h>
    static double convkit_seconds(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
    }
    #endif
    """
    double convkit_seconds() nogil

# convkit._scan.digest_function(): the dedup digest of a UTF-8 text, normalised in scratch.
ctypedef void (*_digest_fn)(
    const unsigned char *utf8, size_t n, unsigned char *scratch, unsigned char *digest
) noexcept nogil

ctypedef struct _Input:
    const unsigned char *data  # NULL: the message is converted with the GIL
    Py_ssize_t size

cdef enum:
    # _lexbor.MAX_NESTING: a message with fewer "<" than this is never too deep.
    _MAX_NESTING = 10000
assert _MAX_NESTING == MAX_NESTING


cdef extern from *:
    """
    /* str.isspace on an ASCII byte. */
    static int convkit_ascii_space(unsigned char c) {
        return c == 32 || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f);
    }
    /* Whether the name's tag opens at s + p (after its "<") and ends as the rule's start tag
       does: 1, 0, or -1 where a character that is not ASCII decides (case folding, Unicode
       white space). */
    static int convkit_start_tag(const unsigned char *s, size_t n, size_t p, const char *name) {
        size_t m = strlen(name), j, q;
        for (j = 0; j < m; j++) {
            unsigned char c;
            if (p + j >= n)
                return 0;
            c = s[p + j];
            if (c >= 0x80)
                return -1;
            if ((name[j] >= 'a' && name[j] <= 'z' ? (c | 0x20) : c) != (unsigned char) name[j])
                return 0;
        }
        q = p + m;
        if (q >= n)
            return 0;
        if (s[q] == '>' || (s[q] == '/' && q + 1 < n && s[q + 1] == '>'))
            return 1;
        if (s[q] >= 0x80)
            return -1;
        if (!convkit_ascii_space(s[q]))
            return 0;
        for (j = q + 1; j < n; j++) {  /* "[^<>]*" then ">" */
            if (s[j] == '>')
                return 1;
            if (s[j] == '<')
                return 0;
        }
        return 0;
    }
    /* convkit.markdown.detect.looks_like_html on UTF-8: 1, 0, or -1 where a character that is
       not ASCII stands where the rule's Unicode classes (white space, digits) or its case
       folding would decide; the caller then asks the rule itself. */
    static int convkit_page_html(const unsigned char *s, size_t n) {
        static const char *const names[] = {
            "div", "p", "pre", "ol", "ul", "table", "h1", "h2", "h3", "h4", "h5", "h6",
            "blockquote", "section", "article", "dl", "hr"};
        size_t i = 0, j, k, t;
        int found = 0, unsure = 0;
        while (i < n && convkit_ascii_space(s[i]))
            i++;
        if (i < n && s[i] >= 0x80)
            return -1;
        if (i < n && s[i] >= '0' && s[i] <= '9') {  /* the edit counter: \d{1,4} ?/ ?\d{1,4}\s* */
            for (j = i; j < n && s[j] >= '0' && s[j] <= '9'; j++)
                ;
            if (j < n && s[j] >= 0x80)
                return -1;
            if (j - i > 4)
                return 0;
            if (j < n && s[j] == ' ')
                j++;
            if (j < n && s[j] >= 0x80)
                return -1;
            if (j >= n || s[j] != '/')
                return 0;
            j++;
            if (j < n && s[j] == ' ')
                j++;
            for (k = j; k < n && s[k] >= '0' && s[k] <= '9'; k++)
                ;
            if (k < n && s[k] >= 0x80)
                return -1;
            if (k == j || k - j > 4)
                return 0;
            for (i = k; i < n && convkit_ascii_space(s[i]); i++)
                ;
            if (i < n && s[i] >= 0x80)
                return -1;
        }
        if (i >= n || s[i] != '<')
            return 0;
        for (t = 0; t < sizeof(names) / sizeof(names[0]); t++) {
            int got = convkit_start_tag(s, n, i + 1, names[t]);
            if (got > 0)
                found = 1;
            else if (got < 0)
                unsure = 1;
        }
        if (!found)
            return unsure ? -1 : 0;
        for (k = n; k > 0 && convkit_ascii_space(s[k - 1]); k--)  /* text.rstrip().endswith(">") */
            ;
        if (k == 0)
            return 0;
        if (s[k - 1] >= 0x80)
            return -1;
        return s[k - 1] == '>';
    }

    /* Claims a list's message for the converter thread (1) or the caller (2): whether the
       slot was free. The thread takes messages from the front and the caller from the back,
       each until a claim fails, so each is converted once and the two meet in between. */
    #if defined(_MSC_VER)
    #include <intrin.h>
    static int convkit_claim(unsigned char *slot, unsigned char who) {
        return _InterlockedCompareExchange8((volatile char *) slot, (char) who, 0) == 0;
    }
    #else
    static int convkit_claim(unsigned char *slot, unsigned char who) {
        unsigned char expected = 0;
        return __atomic_compare_exchange_n(slot, &expected, who, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE);
    }
    #endif
    """
    bint _claim "convkit_claim"(unsigned char *slot, unsigned char who) noexcept nogil
    int _page_html "convkit_page_html"(const unsigned char *s, size_t n) noexcept nogil


def page_html(str text):
    """:func:`convkit.markdown.detect.looks_like_html` as the converter thread decides it, on
    the text's UTF-8: True, False, or None where a character that is not ASCII leaves it to the
    rule itself (Unicode white space and digits, case folding)."""
    data = text.encode("utf-8", "surrogatepass")
    cdef int got = _page_html(<const unsigned char *> PyBytes_AS_STRING(data), len(data))
    return None if got < 0 else bool(got)


# What the thread made of a message (BatchConverter.needs_python): converted; to convert with
# the GIL; (detecting) to decide with the GIL whether it is page HTML; not page HTML.
cdef enum:
    _DONE = 0
    _CONVERT_IN_PYTHON = 1
    _DECIDE_IN_PYTHON = 2
    _NOT_HTML = 3


cdef object _converted_if_html(str html):
    return _converted(html) if looks_like_html(html) else None


cdef class BatchConverter:
    """Converts lists of messages (:meth:`submit`, then :meth:`collect`) on a thread of its own
    that never holds the GIL, so that the calling thread runs Python meanwhile.

    A caller that comes to :meth:`collect` before the thread is done does not wait idle (with
    ``share``): it converts messages from the end of the list itself, one at a time, while the
    thread goes on from the front, until the two meet. The work of a run then spreads over
    both threads, whichever has more of its own.

    The thread parses into a lexbor document of its own and walks with a walk of its own
    (``gilfree``). A message it cannot finish without Python (an image, a titled link, an
    ``<ol start>``, an attribute value that is not ASCII, a tag it does not know yet, a line
    after a soft break that might start a block and is not ASCII, input too deep for the walk)
    is marked, and :meth:`collect` converts it with :func:`convert`, on the calling thread. So
    the thread takes the GIL for nothing: a thread that took it per list would wait for it
    each time, up to the interpreter's switch interval (5 ms), while the caller runs Python.
    """
    cdef PyThread_type_lock ready, done
    cdef _Walk walk
    cdef void *document
    cdef void *parser
    cdef bint stopping, pending
    cdef list htmls
    # inputs: an _Input per message; results: the markdown of each, one after the other;
    # ends: where each one ends there (size_t); needs_python: a byte per message;
    # cleaned: a message without NUL and markers, when it held any.
    cdef _Buffer inputs, results, ends, needs_python, cleaned
    # claims: a byte per message, who converts it (see convkit_claim); taken: how many the
    # thread converted, from the front.
    cdef _Buffer claims
    cdef size_t taken
    cdef bint share, detect
    cdef double seconds
    # With digests: the function that hashes (NULL: none), its scratch, and each converted
    # message's digest, 32 bytes a message.
    cdef _digest_fn digest
    cdef _Buffer normal, digests
    # The last collected list's digests: bytes per message, None where the thread did not
    # hash it (it needed Python). None when not hashing.
    cdef readonly list last_digests
    # The last list's seconds on the thread, how many of its messages needed the GIL, how
    # many collect took over from the thread, and the seconds collect spent converting both.
    cdef readonly double last_seconds, last_caller_seconds
    cdef readonly Py_ssize_t last_fallbacks, last_shared
    # Whether the thread has converted the submitted list (collect need not wait).
    cdef readonly bint converted
    cdef object error, thread

    def __cinit__(self):
        self.ready = PyThread_allocate_lock()
        self.done = PyThread_allocate_lock()
        if self.ready == NULL or self.done == NULL:
            raise MemoryError()
        # Both held: the thread waits on ``ready``, the caller of collect on ``done``.
        PyThread_acquire_lock(self.ready, WAIT_LOCK)
        PyThread_acquire_lock(self.done, WAIT_LOCK)
        self.inputs = _Buffer()
        self.results = _Buffer()
        self.ends = _Buffer()
        self.needs_python = _Buffer()
        self.cleaned = _Buffer()
        self.normal = _Buffer()
        self.digests = _Buffer()
        self.claims = _Buffer()

    def __init__(self, digests=False, share=True, detect=False):
        """``digests``: also hash each converted message as dedup does (the SHA-256 digest of
        its normalised UTF-8, see :func:`convkit.filters.content_digest`), into
        :attr:`last_digests`; only where libcrypto's SHA-256 is found (see
        :mod:`convkit.sha256`), else :attr:`last_digests` stays None. ``share``: :meth:`collect`
        converts messages itself while the thread is still at work (see the class).
        ``detect``: convert only the messages that are page HTML
        (:func:`convkit.markdown.detect.looks_like_html`, decided by the thread, see
        :func:`page_html`); the others come back as None."""
        import threading

        self.share = share
        self.detect = detect
        if not _bound:
            raise RuntimeError("convkit.markdown._fast.bind() has not succeeded")
        if digests:
            try:
                from .._scan import digest_function
            except ImportError:  # the compiled scans are not built: dedup hashes itself
                digest_function = None
            found = None if digest_function is None else digest_function()
            if found is not None:
                self.digest = <_digest_fn> <uintptr_t> found
        _own_document(&self.document, &self.parser)
        self.walk = _Walk()
        self.walk.scratch.gilfree = True
        self.thread = threading.Thread(target=self._serve, name="convkit-html", daemon=True)
        self.thread.start()

    def __dealloc__(self):
        if self.parser != NULL:
            _parser_destroy(self.parser)
        if self.document != NULL:
            _document_destroy(self.document)
        if self.ready != NULL:
            PyThread_free_lock(self.ready)
        if self.done != NULL:
            PyThread_free_lock(self.done)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def submit(self, list htmls):
        """Start converting ``htmls`` (a list of str); :meth:`collect` gives the results."""
        cdef Py_ssize_t i, n = len(htmls), size
        cdef const char *data
        cdef _Input *inputs
        if self.pending:
            raise RuntimeError("submit before the previous list was collected")
        if self.stopping:
            raise RuntimeError("the converter is closed")
        self.inputs.length = 0
        self.inputs.reserve(n * sizeof(_Input))
        self.ends.reserve(n * sizeof(size_t))
        self.needs_python.reserve(n)
        self.claims.reserve(n)
        if n:
            memset(self.claims.data, 0, n)
        if self.digest != NULL:
            self.digests.reserve(32 * n)
        inputs = <_Input *> self.inputs.data
        for i in range(n):
            html = htmls[i]
            if type(html) is not str:
                raise TypeError(f"message {i} is {type(html).__name__}, not str")
            try:
                # UTF-8 without a copy for ASCII text (kept by the str for the others).
                data = PyUnicode_AsUTF8AndSize(html, &size)
            except UnicodeEncodeError:  # a lone surrogate: encode(..., "ignore") decides
                data, size = NULL, 0
            inputs[i].data = <const unsigned char *> data
            inputs[i].size = size
        self.inputs.length = n * sizeof(_Input)
        self.htmls = htmls  # the UTF-8 lives as long as they do
        self.pending = True
        self.converted = False
        if self.error is None:
            PyThread_release_lock(self.ready)

    def collect(self):
        """The submitted list's markdown, in order: a str per message, the exception its
        conversion raised (it goes on with the others), or (``detect``) None for a message that
        is not page HTML."""
        cdef Py_ssize_t i, n
        cdef unsigned char state
        cdef size_t start = 0, end
        cdef double started
        if not self.pending:
            raise RuntimeError("collect without a submitted list")
        htmls = self.htmls
        n = len(htmls)
        shared = []  # the caller's, from the last message back
        self.last_caller_seconds = 0.0
        if self.error is None:
            if self.share and not self.converted:
                started = convkit_seconds()
                i = n - 1
                while i >= 0 and _claim(<unsigned char *> self.claims.data + i, 2):
                    shared.append(self.here(htmls[i]))
                    i -= 1
                self.last_caller_seconds = convkit_seconds() - started
            with nogil:
                PyThread_acquire_lock(self.done, WAIT_LOCK)
        self.pending = False
        self.htmls = None
        out = []
        self.last_digests = None
        self.last_shared = 0
        if self.error is not None:  # the thread has ended (out of memory): convert here
            started = convkit_seconds()
            self.last_seconds = 0.0
            self.last_fallbacks = n
            for html in htmls:
                out.append(self.here(html))
            self.last_caller_seconds += convkit_seconds() - started
            return out
        if self.taken + len(shared) != n:  # pragma: no cover - the claims guarantee it
            raise AssertionError(f"{self.taken} + {len(shared)} messages converted of {n}")
        self.last_seconds = self.seconds
        self.last_fallbacks = 0
        self.last_shared = len(shared)
        digests = None if self.digest == NULL else []
        for i in range(<Py_ssize_t> self.taken):
            end = (<size_t *> self.ends.data)[i]
            state = self.needs_python.data[i]
            if state == _NOT_HTML:
                out.append(None)
                if digests is not None:
                    digests.append(None)
            elif state != _DONE:
                self.last_fallbacks += 1
                started = convkit_seconds()
                if state == _DECIDE_IN_PYTHON:
                    out.append(_converted_if_html(htmls[i]))
                else:
                    out.append(_converted(htmls[i]))
                self.last_caller_seconds += convkit_seconds() - started
                if digests is not None:
                    digests.append(None)
            else:
                out.append(_utf8(self.results.data + start, end - start))
                if digests is not None:
                    digests.append(
                        PyBytes_FromStringAndSize(<char *> self.digests.data + 32 * i, 32)
                    )
            start = end
        out.extend(reversed(shared))
        if digests is not None:
            digests.extend([None] * len(shared))  # the caller does not hash: dedup will
        self.last_digests = digests
        if self.results.capacity > _KEEP_RESULTS_BELOW:
            self.results.trim()
        return out

    def close(self):
        """Stop the thread (after the list it is converting, if any, whose results are
        dropped)."""
        if self.pending:
            # Waited for, not collected: a collect that an interruption (Ctrl-C) stopped while
            # it converted messages itself has claimed some that neither thread then converts.
            if self.error is None:
                with nogil:
                    PyThread_acquire_lock(self.done, WAIT_LOCK)
            self.pending = False
            self.htmls = None
        if not self.stopping:
            self.stopping = True
            if self.error is None:
                PyThread_release_lock(self.ready)
            self.thread.join()

    def _serve(self):
        try:
            with nogil:
                self.serve()
        except BaseException as e:  # noqa: B036 - kept for collect, which then converts itself
            self.error = e
            PyThread_release_lock(self.done)

    cdef int serve(self) except -1 nogil:
        cdef double started
        while True:
            PyThread_acquire_lock(self.ready, WAIT_LOCK)
            if self.stopping:
                return 0
            started = convkit_seconds()
            self.convert_all()
            self.seconds = convkit_seconds() - started
            self.converted = True
            PyThread_release_lock(self.done)

    cdef int convert_all(self) except -1 nogil:
        cdef size_t i, start, n = self.inputs.length // sizeof(_Input)
        cdef _Input *inputs = <_Input *> self.inputs.data
        cdef int page
        self.results.length = 0
        self.taken = n
        for i in range(n):
            if not _claim(<unsigned char *> self.claims.data + i, 1):
                self.taken = i  # the caller has this one and all after it
                break
            start = self.results.length
            if inputs[i].data == NULL:
                self.needs_python.data[i] = _DECIDE_IN_PYTHON if self.detect else _CONVERT_IN_PYTHON
            else:
                page = 1 if not self.detect else _page_html(inputs[i].data, inputs[i].size)
                if page == 0:
                    self.needs_python.data[i] = _NOT_HTML
                elif page < 0:
                    self.needs_python.data[i] = _DECIDE_IN_PYTHON
                elif self.convert_one(inputs[i].data, inputs[i].size):
                    self.needs_python.data[i] = _CONVERT_IN_PYTHON
                else:
                    self.needs_python.data[i] = _DONE
            (<size_t *> self.ends.data)[i] = self.results.length
            if self.digest != NULL and self.needs_python.data[i] == _DONE:
                self.normal.length = 0
                self.normal.reserve(self.results.length - start)
                self.digest(
                    self.results.data + start,
                    self.results.length - start,
                    self.normal.data,
                    self.digests.data + 32 * i,
                )
        if self.normal.capacity > _KEEP_BUFFER_BELOW:
            self.normal.trim()
        return 0

    cdef object here(self, str html):
        """A message converted by the calling thread, with the thread's rule: page HTML only
        (``detect``), or any."""
        return _converted_if_html(html) if self.detect else _converted(html)

    cdef int convert_one(self, const unsigned char *data, size_t size) except -1 nogil:
        """:func:`convert` of one message into ``results``: 0, or 1 if it needs the GIL."""
        cdef _Node *wrapper
        cdef size_t mark = self.results.length
        cdef void *fresh
        if memchr(data, 0, size) != NULL or _has_marker(data, size, _CODE_3, _SOFT_3):
            data = self.clean(data, size)
            size = self.cleaned.length
        # too_deep's own pattern decides for a message with that many tags at all.
        if size > _MAX_NESTING and _count(data, size, 60) > _MAX_NESTING:
            return 1
        _document_clean(self.document)
        _parser_clean(self.parser)
        wrapper = _parse_fragment(self.parser, self.document, _div_id, _html_ns, data, size)
        if wrapper == NULL:
            return 1  # convert raises the error
        if wrapper.first_child != NULL:
            self.walk.reset()
            self.walk.run(wrapper.first_child)
            if not self.walk.scratch.bailed:
                _finish_into(
                    self.walk.tmp, self.walk.out.data, self.walk.out.length, self.walk.scratch
                )
            if not self.walk.scratch.bailed:
                self.results.add(self.walk.tmp.data, self.walk.tmp.length)
            self.walk.trim()
        if size > _KEEP_DOCUMENT_BELOW:
            fresh = _document_create()
            if fresh != NULL:
                _document_destroy(self.document)
                self.document = fresh
        if self.walk.scratch.bailed:
            self.results.length = mark
            return 1
        return 0

    cdef const unsigned char *clean(self, const unsigned char *data, size_t size) except NULL nogil:
        # clean_input on UTF-8: NUL bytes and the markers' three bytes out.
        cdef size_t i = 0
        self.cleaned.length = 0
        self.cleaned.reserve(size + 1)
        while i < size:
            if data[i] == 0:
                i += 1
            elif data[i] == _M0 and _is_marker(data + i, size - i):
                i += 3
            else:
                self.cleaned.data[self.cleaned.length] = data[i]
                self.cleaned.length += 1
                i += 1
        return self.cleaned.data


cdef enum:
    # The results of a list past this are freed after it is collected.
    _KEEP_RESULTS_BELOW = 1 << 24



cdef object _converted(str html):
    try:
        return convert(html)
    except Exception as e:  # noqa: BLE001 - the caller decides what one message's error means
        return e


cdef size_t _count(const unsigned char *s, size_t n, unsigned char c) noexcept nogil:
    cdef size_t count = 0
    cdef const unsigned char *p = s
    cdef const unsigned char *end = s + n
    while True:
        p = <const unsigned char *> memchr(p, c, end - p)
        if p == NULL:
            return count
        count += 1
        p += 1


def convert_many(list htmls) -> list:
    """:func:`convert` of each message, on a :class:`BatchConverter`'s thread (for tests and
    one-off lists; a pipeline keeps one converter for its run)."""
    with BatchConverter() as converter:
        converter.submit(htmls)
        return converter.collect()


# -- the last step: _layout.finish over the walk's UTF-8, without a list of lines ----------

cdef inline bint _is_code_at(const unsigned char *data, size_t i, size_t end) noexcept nogil:
    return i + 3 <= end and _marker3(data + i, _CODE_3)


cdef inline bint _is_break_at(const unsigned char *data, size_t i, size_t end) noexcept nogil:
    return i + 3 <= end and _marker3(data + i, _BREAK_3)


cdef inline bint _blank_line(const unsigned char *data, size_t start, size_t end) noexcept nogil:
    # _layout._blank: only spaces and quote markers.
    cdef size_t i
    for i in range(start, end):
        if data[i] != 32 and data[i] != 62:
            return False
    return True


cdef inline bint _has_code(const unsigned char *data, size_t start, size_t end) noexcept nogil:
    cdef size_t i
    for i in range(start, end):
        if data[i] == _M0 and _is_code_at(data, i, end):
            return True
    return False


def finish(str text) -> str:
    """:func:`convkit.markdown._layout.finish`, the same output, one pass over the text."""
    cdef bytes data = text.encode("utf-8", "surrogatepass")
    cdef _Buffer out = _Buffer()
    cdef _Buffer scratch = _Buffer()
    _finish_into(out, data, len(data), scratch)
    return PyUnicode_DecodeUTF8(<const char *> out.data, out.length, "surrogatepass")


cdef int _finish_into(_Buffer dst, const unsigned char *data, size_t n, _Buffer scratch) except -1 nogil:
    """:func:`finish` on UTF-8 (the markers are three bytes each, see the converters), into
    ``dst``, which is emptied first; ``scratch`` takes the text once its soft breaks are
    resolved."""
    cdef size_t o = 0, lines = 0, s = 0, e, le, i, start, mark, prev = 0, next_end, first
    cdef Py_ssize_t at
    cdef bint last_blank = False, backslash, blank, code_chars, markers
    cdef const unsigned char *p
    cdef unsigned char *out
    if _has_soft(data, n):
        scratch.length = 0
        _soft_breaks_into(scratch, data, n)
        data = scratch.data
        n = scratch.length
    # The output is never longer than the input: a "\\" replaces a BREAK's three bytes.
    dst.length = 0
    dst.reserve(n + 1)
    out = dst.data
    while True:
        # The line's end, and its first CODE marker if any (memchr: most lines have no EF
        # byte, which starts every marker).
        p = <const unsigned char *> memchr(data + s, 10, n - s)
        e = n if p == NULL else <size_t> (p - data)
        markers = memchr(data + s, _M0, e - s) != NULL
        at = -1
        if markers:
            for i in range(s, e):
                if data[i] == _M0 and _is_code_at(data, i, e):
                    at = i
                    break
        mark = o  # to take the line back
        start = o + 1 if lines else o
        if at >= 0:
            # A code line: container prefix, then the code verbatim (markers removed).
            if lines:
                out[o] = 10
                o += 1
            code_chars = False
            i = at + 3
            while i < e:
                if data[i] == _M0 and (_is_code_at(data, i, e) or _is_break_at(data, i, e)):
                    i += 3
                else:
                    code_chars = True
                    break
            le = at
            if not code_chars:
                while le > s and data[le - 1] == 32:
                    le -= 1
            for i in range(s, le):
                out[o] = data[i]
                o += 1
            i = at + 3
            while i < e:
                # A <br> that broken markup left on a fence goes too.
                if data[i] == _M0 and (_is_code_at(data, i, e) or _is_break_at(data, i, e)):
                    i += 3
                else:
                    out[o] = data[i]
                    o += 1
                    i += 1
            lines += 1
            prev = start
            last_blank = False
        else:
            le = e
            while le > s and (data[le - 1] == 32 or data[le - 1] == 9):
                le -= 1
            backslash = False
            if markers and le >= s + 3 and _is_break_at(data, le - 3, le):
                le -= 3
                while le > s and (data[le - 1] == 32 or data[le - 1] == 9):
                    le -= 1
                # A hard break only when the block goes on in the next line.
                if e < n:
                    next_end = e + 1
                    while next_end < n and data[next_end] != 10:
                        next_end += 1
                    backslash = not _blank_line(data, e + 1, next_end) and not _has_code(
                        data, e + 1, next_end
                    )
            if lines:
                out[o] = 10
                o += 1
            if not markers:
                memcpy(out + o, data + s, le - s)
                o += le - s
            else:
                i = s
                while i < le:
                    if data[i] == _M0 and _is_break_at(data, i, le):
                        i += 3
                    else:
                        out[o] = data[i]
                        o += 1
                        i += 1
            if backslash:
                out[o] = 92
                o += 1
            blank = not backslash and _blank_line(out, start, o)
            if blank:
                while o > start and out[o - 1] == 32:
                    o -= 1
                if not lines or (
                    last_blank
                    and o - start == mark - prev
                    and memcmp(out + prev, out + start, o - start) == 0
                ):
                    o = mark  # a first line, or the same blank line again
                else:
                    lines += 1
                    prev = start
                    last_blank = True
            else:
                lines += 1
                prev = start
                last_blank = False
        if e >= n:
            break
        s = e + 1
    if last_blank:
        o = prev - 1 if lines > 1 else 0
    # .strip(" \n")
    first = 0
    while first < o and (out[first] == 32 or out[first] == 10):
        first += 1
    while o > first and (out[o - 1] == 32 or out[o - 1] == 10):
        o -= 1
    if first:
        memmove(out, out + first, o - first)
    dst.length = o - first
    return 0
