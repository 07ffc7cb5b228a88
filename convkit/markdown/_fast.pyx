"""The compiled HTML → markdown engine: the reference engine's walk over lexbor's C tree.

Same rules, same output as :mod:`convkit.markdown.reference` (whose docstring is the spec) and
the same shape as :mod:`convkit.markdown._walk`, which it mirrors method for method; what
changes is how the tree is read. The reference engine asks selectolax for a ``LexborNode``
object per step, a dict of attributes per element and a regex callback per white-space run;
here the walk follows lexbor's own node pointers, reads text as UTF-8 bytes and collapses white
space in C, and only creates Python strings for the text it outputs.

How lexbor is reached (see also ``fast.py`` and the README):

* selectolax 1.0 parses; ``LexborNode.mem_id`` is the address of the ``lxb_dom_node_t``.
* The node and text layouts (``_Node``, ``_CharData``) are declared here as selectolax's
  ``lexbor.pxd`` declares them; the wheel ships no lexbor headers to compile against.
* Names and attributes go through lexbor's exported functions, looked up with ``dlsym`` in
  selectolax's own extension module at :func:`bind` time, so no struct beyond the node's is
  read directly. So does parsing: every message is parsed as selectolax parses a fragment
  (UTF-8, context ``<div>``), into one document and parser of this module's, cleaned before
  each message instead of created and destroyed for it.
* Tag ids are learned at :func:`bind` time from elements that selectolax creates (never taken
  from lexbor's headers), and :func:`bind` checks every field it relies on against selectolax's
  Python API. ``fast.py`` then converts canary documents with both engines; any difference and
  the fast engine is not used.

Nothing recurses: the walk keeps its stack in a growing C array, as the reference keeps a list.
"""
cimport cython
from cpython.unicode cimport (
    PyUnicode_DATA,
    PyUnicode_DecodeUTF8,
    PyUnicode_FromKindAndData,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
)
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uintptr_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

from ._layout import BREAK, CODE, SOFT, soft_breaks
from ._lexbor import (
    _HTML_SPACE_RUN,
    _LANGUAGE,
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
from .noise import CHROME_TAGS, DROPPED_TAGS, is_copy_stats, is_regeneration_counter
from ._rules import (
    _BACKTICK_RUN,
    _EDGE as _RULES_EDGE,
    _SCHEME_URL,
    _URL_CONTROL,
    _destination,
    _title,
)

# A str's characters, one type per width (1, 2 or 4 bytes): the loops over text are compiled
# once per width, instead of choosing the width at every character as PyUnicode_READ does.
ctypedef fused _char:
    uint8_t
    uint16_t
    uint32_t

__all__ = ["LAYOUT_FROM", "bind", "convert", "finish", "walk"]

#: Where the declarations of lexbor's structs below come from.
LAYOUT_FROM = "selectolax 1.0.2 lexbor.pxd (lxb_dom_node_t, lxb_dom_character_data_t)"


# -- lexbor, as far as this module reads it ---------------------------------------------------

cdef extern from *:
    """
    #if defined(_WIN32)
    #include <windows.h>
    static void *convkit_dlopen(const char *path) { return (void *) GetModuleHandleA(path); }
    static void *convkit_dlsym(void *handle, const char *name) {
        return handle ? (void *) GetProcAddress((HMODULE) handle, name) : NULL;
    }
    #else
    #include <dlfcn.h>
    static void *convkit_dlopen(const char *path) {
    #ifdef RTLD_NOLOAD
        return dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    #else
        return dlopen(path, RTLD_NOW | RTLD_LOCAL);
    #endif
    }
    static void *convkit_dlsym(void *handle, const char *name) {
        return handle ? dlsym(handle, name) : NULL;
    }
    #endif
    """
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

# Names whose info is learned per tag id. Any other element is looked up by its name.
_LEARNED_NAMES = sorted(
    set(_KIND_OF) | set(HEADINGS) | set(BLOCK_TAGS) | set(DROPPED_TAGS) | set(CHROME_TAGS)
    | {"u", "mark", "small", "abbr", "cite", "font", "time", "label", "ins", "var", "tt", "big",
       "nobr", "dfn", "data", "bdi", "bdo", "ruby", "rt", "rp", "wbr", "picture", "source",
       "mi", "mo", "mn", "msup", "msub", "mrow", "semantics", "mtext", "ms", "figure", "sup"}
)

cdef enum:
    _ID_CACHE = 4096
cdef int _info_by_id[_ID_CACHE]  # -1: look the element up by name
cdef uintptr_t _text_id = 0
cdef bint _bound = False


cdef inline _Node *_node_of(object lexbor_node) except NULL:
    cdef uintptr_t address = lexbor_node.mem_id
    if address == 0:
        raise ValueError("node without a lexbor node")
    return <_Node *> address


cdef inline str _utf8(const unsigned char *data, size_t length):
    # selectolax's policy for every string it reads from lexbor.
    return PyUnicode_DecodeUTF8(<const char *> data, length, "replace")


cdef int _info(_Node *node) except -1:
    cdef uintptr_t tag_id = node.local_name
    cdef size_t length = 0
    cdef const unsigned char *name
    if tag_id < _ID_CACHE and _info_by_id[tag_id] >= 0:
        return _info_by_id[tag_id]
    name = _element_name(<void *> node, &length)
    if name == NULL:
        return B_DROPPED  # selectolax's tag is None: the reference skips the element
    return _info_of(_utf8(name, length))


cdef void *_find_attr(_Node *node, const char *name, size_t length) noexcept:
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


cdef bint _might_be_math(_Node *node) noexcept:
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


cdef inline bint _is_space(unsigned char c) noexcept:
    return c == 32 or c == 10 or c == 9 or c == 13 or c == 12


cdef inline bint _is_marker(const unsigned char *p, size_t left) noexcept:
    # U+FDD0..U+FDD2 in UTF-8.
    return left >= 3 and p[0] == 0xEF and p[1] == 0xB7 and 0x90 <= p[2] <= 0x92


cdef _Node *_next_in(_Node *node, _Node *top, bint descend) noexcept:
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


# -- a growing byte buffer for text ---------------------------------------------------------

cdef class _Buffer:
    cdef unsigned char *data
    cdef size_t length, capacity

    def __dealloc__(self):
        free(self.data)

    cdef int reserve(self, size_t extra) except -1:
        cdef size_t capacity = self.capacity or 256
        cdef unsigned char *data
        if self.length + extra <= self.capacity:
            return 0
        while capacity < self.length + extra:
            capacity *= 2
        data = <unsigned char *> realloc(self.data, capacity)
        if data == NULL:
            raise MemoryError()
        self.data = data
        self.capacity = capacity
        return 0

    cdef int add(self, const unsigned char *data, size_t length) except -1:
        self.reserve(length)
        memcpy(self.data + self.length, data, length)
        self.length += length
        return 0

    cdef int add_text(self, _Node *node) except -1:
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


cdef tuple _code_block(_Node *pre, _Buffer buf):
    """Language and exact text of a ``<pre>`` (``_lexbor.code_block``)."""
    cdef _Node *code = _first_descendant(pre, B_CODE_TAG, 0)
    cdef bint started = code == NULL
    cdef _Node *node = pre.first_child
    cdef bint descend
    cdef int info
    buf.length = 0
    while node != NULL:
        descend = False
        if node.local_name == _text_id:
            if started and node.type == _TEXT_NODE:
                buf.add_text(node)
        elif node.type == _ELEMENT_NODE:
            info = _info(node)
            if not info & B_DROPPED:
                if not started and node == code:
                    started = True
                if (info & KIND_MASK) == K_BR:
                    if started:
                        buf.add(b"\n", 1)
                else:
                    descend = True
        node = _next_in(node, pre, descend)
    while buf.length and buf.data[buf.length - 1] in b" \t\n":
        buf.length -= 1
    language = _language(code) if code != NULL else ""
    return language or _language(pre), buf.text()


cdef str _language(_Node *node):
    m = _LANGUAGE.search(_attr(node, "class") or "")
    # A backtick cannot be part of a backtick fence's info string.
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

cdef str _HARD_BREAK = BREAK + "\n"
cdef str _TRAILING = " \n" + SOFT


cdef class _Frame:
    """An open element (``_walk._Frame``); ``flags`` are the children's parent_tags."""
    cdef _Node *node
    cdef int info, kind, flags, parent_flags
    cdef list parts, rows, cells
    cdef str caption, marker
    cdef long long counter, ol_next, pres_since
    cdef bint has_ol_next, tail_code


cdef _Frame _new_frame(_Node *node, int info, int flags, int parent_flags):
    cdef _Frame f = _Frame.__new__(_Frame)
    f.node = node
    f.info = info
    f.kind = info & KIND_MASK
    f.flags = flags
    f.parent_flags = parent_flags
    f.parts = []
    if info & B_TABLE_STRUCT:  # only tables and their parts collect rows and cells
        f.rows = []
        f.cells = []
    f.caption = ""
    f.marker = ""
    f.counter = 1
    return f


# Python-style negative indices (parts[-1]) in the walk, as in _walk.py.
@cython.wraparound(True)
cdef class _Walk:
    cdef list frames
    cdef _Frame top
    cdef int ws, content_depth
    cdef bint seen_content
    cdef unsigned char *stack
    cdef size_t depth, capacity
    cdef _Buffer buf

    def __cinit__(self):
        self.top = _new_frame(NULL, K_ROOT, 0, 0)
        self.frames = [self.top]
        self.ws = AT_START
        self.buf = _Buffer()

    def __dealloc__(self):
        free(self.stack)

    cdef int push(self, unsigned char entry) except -1:
        cdef unsigned char *stack
        cdef size_t capacity
        if self.depth == self.capacity:
            capacity = self.capacity * 2 if self.capacity else 64
            stack = <unsigned char *> realloc(self.stack, capacity)
            if stack == NULL:
                raise MemoryError()
            self.stack = stack
            self.capacity = capacity
        self.stack[self.depth] = entry
        self.depth += 1
        return 0

    cdef str run(self, _Node *first):
        cdef _Node *node = first
        cdef int entered
        while node != NULL:
            entered = -1
            if node.local_name == _text_id:
                if node.type == _TEXT_NODE:
                    self.text(node)
            elif node.type == _ELEMENT_NODE:
                entered = self.enter(node)
            if entered >= 0:
                if node.first_child != NULL:
                    self.push(<unsigned char> entered)
                    node = node.first_child
                    continue
                self.leave(entered)
            while True:
                if node.next != NULL:
                    node = node.next
                    break
                if self.depth == 0:
                    node = NULL
                    break
                node = node.parent
                self.depth -= 1
                self.leave(self.stack[self.depth])
        return "".join((<_Frame> self.frames[0]).parts)

    # -- entering and leaving elements; an entry is has_frame | is_content << 1 ------------

    cdef int enter(self, _Node *node) except -2:
        cdef int info = _info(node)
        cdef int kind = info & KIND_MASK
        cdef bint is_content
        cdef _Frame frame, new
        cdef int flags
        if info & B_DROPPED:
            return -1
        is_content = not (info & B_CHROME)
        if self.depth >= MAX_DEPTH:
            self.content_depth += is_content
            return is_content << 1
        frame = self.top
        if kind == K_PRE:
            language, code = _code_block(node, self.buf)
            self.code_block(frame, language, code)
            return -1
        if kind == K_MATH or _might_be_math(node):
            if kind == K_MATH or "katex" in (_attr(node, "class") or ""):
                math = _tex_of(node, kind, self.buf)
                if math is not None:
                    self.math(frame, math[0], math[1])
                    return -1
                if _is_katex_drawing(node):
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
        if info & B_INLINE_CTX:
            flags |= F_INLINE
        elif info & B_NOFORMAT_CTX:
            flags |= F_NOFORMAT
        new = _new_frame(node, info, flags, frame.flags)
        if kind == K_OL:
            new.counter = self.ol_start(node, frame)
        elif kind == K_LI:
            if frame.kind == K_OL:
                new.marker = f"{frame.counter}."
                frame.counter += 1
            else:
                new.marker = "-"
        if info & B_BLOCK:
            self.block_boundary(frame)
        self.frames.append(new)
        self.top = new
        self.content_depth += is_content
        return 1 | (is_content << 1)

    cdef long long ol_start(self, _Node *node, _Frame parent) except? -1:
        start = _start_number(_attr(node, "start"))
        if start is not None:
            return start
        # Numbering goes on after code blocks (see _walk.Walk._ol_start).
        if parent.has_ol_next and parent.pres_since:
            return parent.ol_next
        return 1

    cdef int leave(self, int entered) except -1:
        cdef _Frame frame, parent
        cdef int kind
        self.content_depth -= entered >> 1
        if not entered & 1:
            return 0
        frame = self.frames.pop()
        parent = self.frames[-1]
        self.top = parent
        kind = frame.kind
        if frame.info & B_BLOCK:
            self.block_boundary(frame)
        text = "".join(frame.parts)
        if kind == K_OL:
            parent.has_ol_next = True
            parent.ol_next = frame.counter
            parent.pres_since = 0
        else:
            parent.has_ol_next = False
        if kind == K_CELL:
            cell = _cell(text)
            if parent.kind == K_TR:
                parent.cells.append((cell, _colspan(_attr(frame.node, "colspan"))))
            else:
                self.add(parent, f" {cell} ", False)
        elif kind == K_TR:
            if parent.info & B_ROW_GROUP or parent.kind == K_TABLE:
                parent.rows.append(frame.cells)
            else:
                self.add(parent, " ".join([c for c, _ in frame.cells]), False)
        elif frame.info & B_ROW_GROUP:
            if parent.kind == K_TABLE:
                parent.rows.extend(frame.rows)
            else:
                self.add(parent, " ".join([c for row in frame.rows for c, _ in row]), False)
        elif kind == K_CAPTION and parent.kind == K_TABLE:
            parent.caption = _cell(text)
        elif kind == K_TABLE:
            self.add(parent, _table(frame.rows, frame.caption, frame.parent_flags), False)
        elif kind == K_BR:
            self.br(parent)
        else:
            text = _convert(frame, text)
            if text and kind == K_IMG:
                self.ws = AFTER_TEXT
                self.seen_content = True
            self.add(parent, text, frame.info & B_CODE_SPAN)
        return 0

    cdef int add(self, _Frame frame, str text, bint code) except -1:
        # Tables keep only rows and cells; a code span never touches a backtick (see _walk).
        cdef list parts = frame.parts
        if not text or frame.info & B_TABLE_STRUCT:
            return 0
        if (code or frame.tail_code) and text[0] == "`" and parts and parts[-1][-1:] == "`":
            text = " " + text
        parts.append(text)
        frame.tail_code = code and text[-1] == "`"
        return 0

    cdef int block_boundary(self, _Frame frame) except -1:
        cdef list parts = frame.parts
        cdef str last
        if parts and (self.ws == AFTER_SPACE or self.ws == AFTER_BREAK):
            last = parts[-1]
            last = last.removesuffix(_HARD_BREAK).rstrip(_TRAILING)
            if last:
                parts[-1] = last
            else:
                parts.pop()
        self.ws = AT_START
        return 0

    # -- leaves ---------------------------------------------------------------------------

    cdef int text(self, _Node *node) except -1:
        cdef _Frame frame = self.top
        cdef _Str *s = &(<_CharData *> node).data
        cdef _Buffer buf = self.buf
        cdef const unsigned char *data = s.data
        cdef size_t n = s.length, i = 0
        cdef int pending = 0  # 0: no white space, 1: a run, 2: a run with a newline
        cdef bint inline, content = False
        cdef bint strip = self.ws != AFTER_TEXT
        cdef unsigned char c
        if frame.info & B_TABLE_STRUCT or data == NULL:
            return 0
        inline = frame.flags & (F_INLINE | F_NOFORMAT)
        buf.reserve(n * 4 + 8)  # a run of one byte grows to four (SOFT + "\n") at most
        buf.length = 0
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
                    self._run(buf, pending, inline, strip)
                    pending = 0
                buf.data[buf.length] = c
                buf.length += 1
                content = True
                i += 1
        if pending:
            self._run(buf, pending, inline, strip)
        if content and self.content_depth == 0:
            raw = no_markers(_utf8(data, n))
            if not self.seen_content and is_regeneration_counter(raw):
                self.seen_content = True
                return 0
            if is_copy_stats(raw):
                return 0
        if buf.length == 0:
            return 0
        c = buf.data[buf.length - 1]
        self.ws = AFTER_SPACE if c == 10 or c == 32 else AFTER_TEXT
        self.add(frame, buf.text(), False)
        if content:
            frame.has_ol_next = False
            self.seen_content = True
        return 0

    cdef inline void _run(self, _Buffer buf, int pending, bint inline, bint strip) noexcept:
        # One collapsed white-space run; dropped at the start of the text unless after text.
        if buf.length == 0 and strip:
            return
        if pending == 2 and not inline:
            buf.data[buf.length] = 0xEF  # SOFT, then the newline
            buf.data[buf.length + 1] = 0xB7
            buf.data[buf.length + 2] = 0x92
            buf.data[buf.length + 3] = 10
            buf.length += 4
        else:
            buf.data[buf.length] = 32
            buf.length += 1

    cdef int br(self, _Frame frame) except -1:
        cdef bint inline = frame.flags & (F_INLINE | F_NOFORMAT)
        if self.ws == AT_START or self.ws == AFTER_BREAK or (inline and self.ws != AFTER_TEXT):
            return 0
        if not inline:
            self.block_boundary(frame)
        self.add(frame, " " if inline else _HARD_BREAK, False)
        self.ws = AFTER_SPACE if inline else AFTER_BREAK
        return 0

    cdef int code_block(self, _Frame frame, str language, str code) except -1:
        self.seen_content = True
        out = _convert_code_block(language, code, frame.flags)
        if frame.flags & (F_INLINE | F_NOFORMAT):
            if out:
                self.ws = AFTER_TEXT
        else:
            self.block_boundary(frame)
        self.add(frame, out, out[-1:] == "`")
        frame.pres_since += 1
        return 0

    cdef int math(self, _Frame frame, bint display, str tex) except -1:
        self.seen_content = True
        out = _convert_math(display, tex, frame.flags)
        if display and not frame.flags & (F_INLINE | F_NOFORMAT):
            self.block_boundary(frame)
        elif out:
            self.ws = AFTER_TEXT
        self.add(frame, out, False)
        frame.has_ol_next = False
        return 0


# -- converters: ReferenceConverter.convert_<tag>, with parent_tags as bits -----------------

# reference._EDGE and the helpers on it, compiled (the property tests hold them to the originals).
cdef str _EDGE = _RULES_EDGE
assert _EDGE == " \n" + BREAK + SOFT


cdef str _edge(str run):
    if BREAK in run:
        return BREAK + "\n"
    return " " if run else ""


cdef tuple _split_edges(str text):
    cdef str inner = text.strip(_EDGE)
    if not inner:
        return text, "", ""
    lead = text[: len(text) - len(text.lstrip(_EDGE))]
    trail = text[len(text.rstrip(_EDGE)):]
    return lead, inner, trail


cdef str _wrap(str text, str mark):
    lead, inner, trail = _split_edges(text)
    if not inner:
        return _edge(lead)
    return _edge(lead) + mark + inner + mark + _edge(trail)


cdef str _block_text(str text):
    if SOFT in text:
        text = soft_breaks(text)
    return text.strip(" \n")


def _helpers():
    """The compiled helpers, for the tests that compare them with the reference's."""
    return {
        "_edge": lambda run: _edge(run),
        "_split_edges": lambda text: _split_edges(text),
        "_wrap": lambda text, mark: _wrap(text, mark),
        "_block_text": lambda text: _block_text(text),
        "_spaces": lambda text: _spaces(text),
    }


cdef Py_UCS4 _SOFT = 0xFDD2


cdef str _spaces(str text):
    """``_SPACE_RUN.sub(" ", text)``: each run of spaces, newlines and SOFT made one space. The
    regex engine cost a table cell a few thousand instructions; most need no change."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef void *out
    cdef Py_ssize_t o
    if kind == 1:
        if not _needs_spaces(<const uint8_t *> data, n):
            return text
    elif kind == 2:
        if not _needs_spaces(<const uint16_t *> data, n):
            return text
    elif not _needs_spaces(<const uint32_t *> data, n):
        return text
    out = malloc(n * kind)
    if out == NULL:
        raise MemoryError()
    try:
        if kind == 1:
            o = _collapse_spaces(<const uint8_t *> data, n, <uint8_t *> out)
        elif kind == 2:
            o = _collapse_spaces(<const uint16_t *> data, n, <uint16_t *> out)
        else:
            o = _collapse_spaces(<const uint32_t *> data, n, <uint32_t *> out)
        return PyUnicode_FromKindAndData(kind, out, o)
    finally:
        free(out)


cdef inline bint _space_run_char(Py_UCS4 c) noexcept:
    return c == 32 or c == 10 or c == _SOFT


cdef bint _needs_spaces(const _char *data, Py_ssize_t n) noexcept:
    # A newline or SOFT, or two spaces in a row.
    cdef Py_ssize_t i
    cdef _char c
    for i in range(n):
        c = data[i]
        if c == 10 or c == _SOFT or (c == 32 and i + 1 < n and _space_run_char(data[i + 1])):
            return True
    return False


cdef Py_ssize_t _collapse_spaces(const _char *data, Py_ssize_t n, _char *out) noexcept:
    cdef Py_ssize_t i, o = 0
    cdef bint in_run = False
    cdef _char c
    for i in range(n):
        c = data[i]
        if _space_run_char(c):
            if not in_run:
                out[o] = 32
                o += 1
                in_run = True
        else:
            out[o] = c
            o += 1
            in_run = False
    return o


cdef str _block(str text, int flags):
    if flags & F_INLINE:
        text = _spaces(text).strip(" ")
        return f" {text} " if text else ""
    text = _block_text(text)
    return f"\n\n{text}\n\n" if text else ""


cdef str _cell(str text):
    return _spaces(text).strip(" ").replace("|", "\\|")


cdef str _convert(_Frame frame, str text):
    """The converter of the frame's tag (``ReferenceConverter.get_conv_fn``)."""
    cdef int kind = frame.kind
    cdef int flags = frame.parent_flags
    if kind == K_DIV or kind == K_CAPTION:
        return _block(text, flags)
    if kind == K_B:
        return _emphasis(text, flags, "**", F_B)
    if kind == K_I:
        return _emphasis(text, flags, "*", F_I)
    if kind == K_CODE:
        return _code(text, flags)
    if kind == K_A:
        return _link(frame.node, text, flags)
    if kind == K_LI:
        return _li(frame.marker, text, flags)
    if kind == K_OL or kind == K_UL:
        return _list(text, flags)
    if kind == K_HEADING:
        return _heading(frame.info >> LEVEL_SHIFT, text, flags)
    if kind == K_BLOCKQUOTE:
        return _blockquote(text, flags)
    if kind == K_DEL:
        return _emphasis(text, flags, "~~", F_DEL)
    if kind == K_IMG:
        return _image(frame.node, flags)
    if kind == K_HR:
        return " " if flags & F_INLINE else "\n\n---\n\n"
    if kind == K_Q:
        return f'"{text}"'
    return text


cdef str _blockquote(str text, int flags):
    if flags & F_INLINE:
        return _block(text, flags)
    text = _block_text(text)
    if not text:
        return ""
    quoted = "\n".join(["> " + line if line.strip(" ") else ">" for line in text.split("\n")])
    return f"\n\n{quoted}\n\n"


cdef str _heading(int n, str text, int flags):
    text = _spaces(text).strip(" ")
    if flags & F_INLINE:
        return f" {text} " if text else ""
    return f"\n\n{'#' * n} {text}\n\n" if text else ""


cdef str _list(str text, int flags):
    if flags & F_INLINE:
        return _block(text, flags)
    text = text.strip("\n")
    if not text:
        return ""
    if flags & F_LI:
        return f"\n{text}\n"
    return f"\n\n{text}\n\n"


cdef str _li(str marker, str text, int flags):
    if flags & F_INLINE:
        return _block(text, flags)
    text = _block_text(text)
    if not text:
        return ""
    indent = " " * (len(marker) + 1)
    lines = text.split("\n")
    out = [f"{marker} {lines[0]}"]
    out.extend([indent + line if line else "" for line in lines[1:]])
    return "\n".join(out) + "\n"


cdef str _table(list rows, str caption, int flags):
    widest = max([sum([span for _, span in row]) for row in rows], default=0)
    if flags & F_INLINE or widest * len(rows) > MAX_TABLE_CELLS:
        words = [caption] + [text for row in rows for text, _ in row]
        return _block(" ".join([w for w in words if w]), flags)
    expanded = []
    for row in rows:
        cells = []
        for text, span in row:
            cells.append(text)
            cells.extend([""] * (span - 1))
        expanded.append(cells)
    width = max([len(r) for r in expanded], default=0)
    blocks = [caption] if caption else []
    if width:
        lines = [_row(expanded[0], width), _row(["---"] * width, width)]
        lines.extend([_row(r, width) for r in expanded[1:]])
        blocks.append("\n".join(lines))
    return "".join([f"\n\n{b}\n\n" for b in blocks])


cdef str _row(list cells, Py_ssize_t width):
    cells = cells + [""] * (width - len(cells))
    return "|" + "|".join([f" {c} " if c else " " for c in cells]) + "|"


cdef str _convert_code_block(str language, str code, int flags):
    if flags & (F_INLINE | F_NOFORMAT):
        return _code(code.replace("\n", " "), flags)
    if not code:
        return ""
    # The regex engine walks the code character by character; most code has no backtick,
    # which a substring test rules out at memchr speed.
    longest = max([len(run) for run in _BACKTICK_RUN.findall(code)], default=0) if "`" in code else 0
    fence = "`" * max(3, longest + 1)
    body = "\n".join([CODE + line for line in code.split("\n")])
    return f"\n\n{CODE}{fence}{language}\n{body}\n{CODE}{fence}\n\n"


cdef str _convert_math(bint display, str tex, int flags):
    if not tex:
        return ""
    if not display:
        return f"${tex}$"
    if flags & (F_INLINE | F_NOFORMAT):
        return f"$${tex}$$"
    return f"\n\n$${tex}$$\n\n"


cdef str _emphasis(str text, int flags, str mark, int same):
    if flags & F_NOFORMAT or flags & same:
        return text
    return _wrap(text, mark)


cdef str _code(str text, int flags):
    if flags & F_NOFORMAT:
        return text
    lead, inner, trail = _split_edges(text)
    if not inner:
        return _edge(lead)
    longest = max([len(run) for run in _BACKTICK_RUN.findall(inner)], default=0)
    if longest:
        inner = f" {inner} "
    return _edge(lead) + "`" * (longest + 1) + inner + "`" * (longest + 1) + _edge(trail)


cdef str _link(_Node *node, str text, int flags):
    if flags & F_NOFORMAT:
        return text
    lead, inner, trail = _split_edges(text)
    href = _attr(node, "href")
    if not inner or not href or not href.strip(" \t\n\r\f"):
        return _edge(lead) + inner + (_edge(trail) if inner else "")
    title = _attr(node, "title")
    if inner == href and not title and _SCHEME_URL.fullmatch(href):
        link = f"<{href}>"
    else:
        link = f"[{inner}]({_destination(href)}{_title(title)})"
    return _edge(lead) + link + _edge(trail)


cdef str _image(_Node *node, int flags):
    alt = _spaces(_URL_CONTROL.sub(" ", _attr(node, "alt") or "")).strip(" ")
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
    global _document_clean, _parser_clean, _parse_fragment, _document, _parser, _div_id, _html_ns
    global _document_create, _document_destroy
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
        "lxb_html_parser_create",
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
    _document_clean = <_clean_f> <uintptr_t> symbols["lxb_html_document_clean"]
    _parser_clean = <_clean_f> <uintptr_t> symbols["lxb_html_parser_clean"]
    _parse_fragment = <_parse_fragment_f> <uintptr_t> symbols["lxb_html_parse_fragment_by_tag_id"]
    if _document == NULL:
        _document = _document_create()
    if _parser == NULL:
        _parser = (<_create_f> <uintptr_t> symbols["lxb_html_parser_create"])()
        if _parser != NULL and (<_init_f> <uintptr_t> symbols["lxb_html_parser_init"])(_parser):
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
    for name in _LEARNED_NAMES:
        first, second = create_node(name), create_node(name)
        node, other = _node_of(first), _node_of(second)
        if node.type != _ELEMENT_NODE or first.tag != name:
            raise RuntimeError(f"cannot create a <{name}> element")
        if node.local_name == other.local_name and node.local_name < _ID_CACHE:
            if node.local_name == _text_id:
                raise RuntimeError(f"<{name}> has the id of text")
            _info_by_id[node.local_name] = _info_of(name)
    # The fragment context selectolax parses messages in: a <div> of the HTML namespace.
    node = _node_of(create_node("div"))
    _div_id, _html_ns = node.local_name, node.ns
    _bound = True


def walk(first) -> str:
    """The walk's text for a parsed fragment's first node, before :func:`finish`."""
    if not _bound:
        raise RuntimeError("convkit.markdown._fast.bind() has not succeeded")
    cdef _Walk w = _Walk()
    return w.run(_node_of(first))


def convert(str html) -> str:
    """Convert one HTML fragment (a message) to markdown; identical to the reference engine."""
    if not _bound:
        raise RuntimeError("convkit.markdown._fast.bind() has not succeeded")
    html = clean_input(html)
    if too_deep(html):
        return plain_text(html)
    # As selectolax parses a fragment (UTF-8, undecodable characters dropped, context <div>),
    # in the module's own document, cleaned first: the tree lives until the next conversion.
    cdef bytes data = html.encode("utf-8", "ignore")
    _document_clean(_document)
    _parser_clean(_parser)
    cdef _Node *wrapper = _parse_fragment(_parser, _document, _div_id, _html_ns, data, len(data))
    if wrapper == NULL:
        raise RuntimeError("lexbor could not parse the message")
    if wrapper.first_child == NULL:
        return ""
    cdef _Walk w = _Walk()
    text = w.run(wrapper.first_child)
    if len(data) > _KEEP_DOCUMENT_BELOW:
        _renew_document()
    return finish(text)


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


# -- the last step: _layout.finish over the characters, without a list of lines ------------

cdef Py_UCS4 _CODE = 0xFDD0
cdef Py_UCS4 _BREAK = 0xFDD1


cdef inline bint _blank_line(const _char *data, Py_ssize_t start, Py_ssize_t end) noexcept:
    # _layout._blank: only spaces and quote markers.
    cdef Py_ssize_t i
    for i in range(start, end):
        if data[i] != 32 and data[i] != 62:
            return False
    return True


cdef inline bint _has_code(const _char *data, Py_ssize_t start, Py_ssize_t end) noexcept:
    cdef Py_ssize_t i
    for i in range(start, end):
        if data[i] == _CODE:
            return True
    return False


cdef inline bint _same(const _char *data, Py_ssize_t a, Py_ssize_t b, Py_ssize_t length) noexcept:
    cdef Py_ssize_t i
    for i in range(length):
        if data[a + i] != data[b + i]:
            return False
    return True


def finish(str text) -> str:
    """:func:`convkit.markdown._layout.finish`, the same output, one pass over the text."""
    text = soft_breaks(text)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    # The output is never longer than the input: a "\\" replaces a BREAK.
    cdef void *out = malloc((n + 1) * kind)
    cdef Py_ssize_t s = 0, o
    if out == NULL:
        raise MemoryError()
    try:
        if kind == 1:
            o = _finish(<const uint8_t *> data, n, <uint8_t *> out, &s)
        elif kind == 2:
            o = _finish(<const uint16_t *> data, n, <uint16_t *> out, &s)
        else:
            o = _finish(<const uint32_t *> data, n, <uint32_t *> out, &s)
        return PyUnicode_FromKindAndData(kind, <char *> out + s * kind, o - s)
    finally:
        free(out)


cdef Py_ssize_t _finish(const _char *data, Py_ssize_t n, _char *out, Py_ssize_t *first) noexcept:
    """The loop of :func:`finish`: writes ``out`` and returns where the result ends; it starts
    at ``first[0]``."""
    cdef Py_ssize_t o = 0, lines = 0, s = 0, e, le, i, at, start, mark, prev = 0, code_chars
    cdef Py_ssize_t next_end
    cdef bint last_blank = False, backslash, blank
    cdef _char c
    while True:
        # The line's end, and its first CODE marker if any, in one pass.
        e = s
        at = -1
        while e < n:
            c = data[e]
            if c == 10:
                break
            if c == _CODE and at < 0:
                at = e
            e += 1
        mark = o  # to take the line back
        start = o + 1 if lines else o
        if at >= 0:
            # A code line: container prefix, then the code verbatim (markers removed).
            if lines:
                out[o] = 10
                o += 1
            code_chars = 0
            for i in range(at + 1, e):
                if data[i] != _CODE and data[i] != _BREAK:
                    code_chars += 1
            le = at
            if not code_chars:
                while le > s and data[le - 1] == 32:
                    le -= 1
            for i in range(s, le):
                out[o] = data[i]
                o += 1
            for i in range(at + 1, e):
                c = data[i]
                if c != _CODE and c != _BREAK:  # a <br> that broken markup left on a fence
                    out[o] = c
                    o += 1
            lines += 1
            prev = start
            last_blank = False
        else:
            le = e
            while le > s and (data[le - 1] == 32 or data[le - 1] == 9):
                le -= 1
            backslash = False
            if le > s and data[le - 1] == _BREAK:
                le -= 1
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
            for i in range(s, le):
                c = data[i]
                if c != _BREAK:
                    out[o] = c
                    o += 1
            if backslash:
                out[o] = 92
                o += 1
            blank = not backslash and _blank_line(<const _char *> out, start, o)
            if blank:
                while o > start and out[o - 1] == 32:
                    o -= 1
                if not lines or (
                    last_blank
                    and o - start == mark - prev
                    and _same(<const _char *> out, prev, start, o - start)
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
    s = 0
    while s < o and (out[s] == 32 or out[s] == 10):
        s += 1
    while o > s and (out[o - 1] == 32 or out[o - 1] == 10):
        o -= 1
    first[0] = s
    return o
