"""Compiled byte and character scans for the reader and for dedup (twin: ``_scan_py.py``).

Each is a single pass that would otherwise cost a Python step per token or per word, or a
copy of the text: finding where a JSON array element ends (so that orjson can decode it from
its bytes), the white space collapsing dedup does before hashing, and the blocked-phrase
filter's case-blind pretest.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy, memset

import hashlib

__all__ = [
    "bind_sha256",
    "contains_folded",
    "content_frames",
    "count_newlines",
    "digest_function",
    "element_end",
    "has_long_number",
    "normalised_utf8",
]


cdef extern from "Python.h":
    bint Py_UNICODE_ISSPACE(Py_UCS4 ch) nogil
    bint PyUnicode_IS_ASCII(object o)


cdef extern from *:
    """
    /* The UTF-8 of a str (made and kept by the str on first use), or NULL with no error set
       when it holds a lone surrogate. */
    static const char *convkit_utf8_or_null(PyObject *text, Py_ssize_t *n) {
        const char *utf8 = PyUnicode_AsUTF8AndSize(text, n);
        if (utf8 == NULL)
            PyErr_Clear();
        return utf8;
    }
    """
    const char *_utf8_or_null "convkit_utf8_or_null"(str text, Py_ssize_t *n)


cdef enum:
    # Digits in a row from which orjson may not keep an integer exact (it returns a float for
    # one beyond 64 bits); 19 digits reach 2**63.
    _LONG_NUMBER = 19


cdef Py_ssize_t _element_end(
    const unsigned char *buf, Py_ssize_t n, Py_ssize_t i, Py_ssize_t *depth, Py_ssize_t *resume,
    bint *long_number
) noexcept nogil:
    cdef Py_ssize_t start
    cdef Py_ssize_t digits = 0
    cdef unsigned char c
    while i < n:
        c = buf[i]
        if 0x30 <= c <= 0x39:
            digits += 1
            if digits >= _LONG_NUMBER:
                long_number[0] = True
            i += 1
            continue
        digits = 0
        if c == 0x22:
            start = i
            i = _string_end(buf, n, i + 1)
            if i >= n:
                resume[0] = start
                return -1
            if depth[0] <= 0:  # a string element: its closing quote ends it
                resume[0] = i + 1
                return i + 1
        elif c == 0x7B or c == 0x5B:
            depth[0] += 1
        elif c == 0x7D or c == 0x5D:
            depth[0] -= 1
            if depth[0] <= 0:
                depth[0] = 0
                resume[0] = i + 1
                return i + 1
        i += 1
    resume[0] = n - digits  # a run of digits the buffer cuts is counted again, whole
    return -1


cdef inline Py_ssize_t _string_end(const unsigned char *buf, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """Where the string whose text starts at ``i`` ends: its closing quote, or ``n`` when the
    buffer ends first. Quotes are found by memchr; one after an odd run of backslashes is
    escaped (the run cannot reach back past the opening quote)."""
    cdef const unsigned char *q
    cdef Py_ssize_t at, back
    while i < n:
        q = <const unsigned char *> memchr(buf + i, 0x22, n - i)
        if q == NULL:
            return n
        at = q - buf
        back = at
        while back > i and buf[back - 1] == 0x5C:
            back -= 1
        if (at - back) % 2 == 0:
            return at
        i = at + 1
    return n


def element_end(const unsigned char[::1] buf, Py_ssize_t i, Py_ssize_t depth, bint long_number=False):
    """Where the JSON array element being scanned ends: see ``_scan_py.element_end``."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef Py_ssize_t resume = 0
    cdef Py_ssize_t end
    if i < 0 or i > n or depth < 0:
        raise ValueError(f"bad scan state: position {i} of {n}, depth {depth}")
    if n == 0:
        return -1, 0, depth, long_number
    with nogil:
        end = _element_end(&buf[0], n, i, &depth, &resume, &long_number)
    return end, resume, depth, long_number


def count_newlines(const unsigned char[::1] buf, Py_ssize_t start, Py_ssize_t end):
    """``buf.count(b"\\n", start, end)``, by memchr: compact JSON has almost no raw new lines,
    and bytes.count looks at every byte."""
    cdef Py_ssize_t n = buf.shape[0]
    if start < 0 or end > n or start > end:
        raise ValueError(f"bad range: {start} to {end} of {n}")
    if start == end:
        return 0
    cdef const unsigned char *p = &buf[0] + start
    cdef const unsigned char *stop = &buf[0] + end
    cdef Py_ssize_t count = 0
    with nogil:
        while p < stop:
            p = <const unsigned char *> memchr(p, 0x0A, stop - p)
            if p == NULL:
                break
            count += 1
            p += 1
    return count


def has_long_number(const unsigned char[::1] buf):
    """Whether ``buf`` holds a run of 19 or more ASCII digits anywhere (strings included): see
    ``_scan_py.has_long_number``."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef Py_ssize_t i = _LONG_NUMBER - 1
    cdef Py_ssize_t j
    cdef bint found = False
    with nogil:
        # Test the last byte of each window of 19: a non-digit there rules the whole window
        # out, so most text costs one test per 19 bytes.
        while i < n:
            if not (0x30 <= buf[i] <= 0x39):
                i += _LONG_NUMBER
                continue
            j = i - 1
            while j > i - _LONG_NUMBER and 0x30 <= buf[j] <= 0x39:
                j -= 1
            if j == i - _LONG_NUMBER:
                found = True
                break
            i = j + _LONG_NUMBER  # the next window that could hold a run starts after j
    return found


def normalised_utf8(text):
    """``" ".join(text.split()).encode("utf-8", "surrogatepass")`` in one pass."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_ssize_t o
    cdef object result
    if PyUnicode_IS_ASCII(text):
        # Its characters are its UTF-8 bytes: written in place, then cut to length.
        result = PyBytes_FromStringAndSize(NULL, n)
        o = _utf8_into(<const unsigned char *> PyUnicode_DATA(text), n,
                       <unsigned char *> PyBytes_AS_STRING(result))
        return result if o == n else result[:o]
    cdef unsigned char *out = <unsigned char *> malloc(_room(text))
    if out == NULL:
        raise MemoryError()
    try:
        o = _unicode_into(text, out)
        return PyBytes_FromStringAndSize(<char *> out, o)
    finally:
        free(out)


def content_frames(turns, extras_of, known=None):
    """The bytes dedup hashes for ``turns`` (objects with ``role``, ``content`` and ``meta``):
    for each turn, its role in UTF-8, prefixed with its length as 8 big-endian bytes, then 32
    (with the top bit set when a block of extras follows) as 8 such bytes and the SHA-256
    digest of its normalised content (:func:`normalised_utf8`); for a turn with metadata whose
    ``extras_of(turn)`` gives bytes, those bytes follow, length-prefixed. ``known``: digests
    already computed (by the HTML converter thread), as ``{id(content): (content, digest)}``."""
    cdef unsigned char *out = NULL
    cdef unsigned char *normal = NULL
    cdef Py_ssize_t cap = 0, o = 0, need, n, rn, normal_cap = 0
    cdef const unsigned char *rd
    if not _sha_looked_up:
        _look_up_sha256()
    try:
        for t in turns:
            role = t.role
            content = t.content
            if not isinstance(role, str):
                raise TypeError(f"expected a str role, got {type(role).__name__}")
            if not isinstance(content, str):
                raise TypeError(f"expected a str, got {type(content).__name__}")
            if PyUnicode_IS_ASCII(role):
                rd = <const unsigned char *> PyUnicode_DATA(role)
                rn = PyUnicode_GET_LENGTH(role)
            else:
                role = (<str> role).encode("utf-8", "surrogatepass")
                rd = <const unsigned char *> PyBytes_AS_STRING(role)
                rn = len(role)
            meta = t.meta
            extras = extras_of(t) if meta else None
            if extras is not None and type(extras) is not bytes:
                # Exactly bytes: a subclass could say any length, and the copy trusts it.
                raise TypeError(f"expected extras as bytes, got {type(extras).__name__}")
            need = o + 8 + rn + 8 + 32 + (0 if extras is None else 8 + len(extras))
            _room_for(&out, &cap, need)
            _put_length(out + o, rn)
            memcpy(out + o + 8, rd, rn)
            o += 8 + rn
            _put_length(out + o, 32)
            if extras is not None:
                out[o] |= 0x80  # the top bit: a length-prefixed block of extras follows
            o += 8
            hit = None if known is None else known.get(id(content))
            if hit is not None and (<tuple> hit)[0] is content:
                digest = (<tuple> hit)[1]
                if type(digest) is not bytes or len(<bytes> digest) != 32:
                    raise ValueError("a known digest is not 32 bytes")
                memcpy(out + o, PyBytes_AS_STRING(digest), 32)
            else:
                _room_for(&normal, &normal_cap, _room(content))
                n = _normalised_into(content, normal)
                if _sha_init != NULL:
                    _sha256(normal, n, out + o)
                else:
                    digest = hashlib.sha256(PyBytes_FromStringAndSize(<char *> normal, n)).digest()
                    memcpy(out + o, PyBytes_AS_STRING(digest), 32)
            o += 32
            if extras is not None:
                n = len(extras)
                _put_length(out + o, n)
                memcpy(out + o + 8, PyBytes_AS_STRING(extras), n)
                o += 8 + n
        return PyBytes_FromStringAndSize(<char *> out, o)
    finally:
        free(out)
        free(normal)


# libcrypto's SHA-256 (see convkit.sha256), or NULL: hashlib then. The low-level calls, not
# the one-shot SHA256, which in OpenSSL 3 looks the algorithm up again on every call.
ctypedef int (*_sha_init_fn)(void *context) noexcept nogil
ctypedef int (*_sha_update_fn)(void *context, const void *data, size_t n) noexcept nogil
ctypedef int (*_sha_final_fn)(unsigned char *digest, void *context) noexcept nogil
ctypedef struct _ShaContext:
    unsigned long long words[32]  # room for SHA256_CTX (112 bytes in OpenSSL 1.0 to 3.x)

cdef _sha_init_fn _sha_init = NULL
cdef _sha_update_fn _sha_update = NULL
cdef _sha_final_fn _sha_final = NULL
cdef bint _sha_looked_up = False


cdef inline void _sha256_by(
    _sha_init_fn init, _sha_update_fn update, _sha_final_fn final,
    const unsigned char *data, size_t n, unsigned char *digest,
) noexcept nogil:
    cdef _ShaContext context
    init(&context)
    update(&context, data, n)
    final(digest, &context)


cdef inline void _sha256(const unsigned char *data, size_t n, unsigned char *digest) noexcept nogil:
    _sha256_by(_sha_init, _sha_update, _sha_final, data, n, digest)


cdef void _utf8_digest(
    const unsigned char *s, size_t n, unsigned char *scratch, unsigned char *digest
) noexcept nogil:
    _sha256(scratch, _utf8_into(s, n, scratch), digest)


cdef int _look_up_sha256() except -1:
    from .sha256 import functions

    bind_sha256(functions())
    return 0


def bind_sha256(functions):
    """Hash with libcrypto's ``(SHA256_Init, SHA256_Update, SHA256_Final)`` at the addresses
    ``functions`` (from :func:`convkit.sha256.functions`), or with hashlib when None; the
    addresses bound before (None for hashlib)."""
    global _sha_init, _sha_update, _sha_final, _sha_looked_up
    before = None
    if _sha_init != NULL:
        before = (<uintptr_t> _sha_init, <uintptr_t> _sha_update, <uintptr_t> _sha_final)
    if functions is None:
        _sha_init, _sha_update, _sha_final = NULL, NULL, NULL
    else:
        init, update, final = functions
        _sha_init = <_sha_init_fn> <uintptr_t> init
        _sha_update = <_sha_update_fn> <uintptr_t> update
        _sha_final = <_sha_final_fn> <uintptr_t> final
    _sha_looked_up = True
    return before


cdef extern from "_dl.h":
    void *convkit_dlopen(const char *path)
    void *convkit_dlsym(void *handle, const char *name)


def symbols(str path, names):
    """The addresses of the functions ``names`` in the library at ``path``, which the process
    has loaded (or in the libraries it depends on); None when it is not loaded or one is
    missing. Nothing is loaded."""
    cdef void *handle = convkit_dlopen(path.encode())
    cdef void *address
    if handle == NULL:
        return None
    found = []
    for name in names:
        address = convkit_dlsym(handle, name.encode())
        if address == NULL:
            return None
        found.append(<uintptr_t> address)
    return tuple(found)


def sha256_by(functions, const unsigned char[::1] data):
    """The SHA-256 digest of ``data`` computed by ``(SHA256_Init, SHA256_Update, SHA256_Final)``
    at the addresses ``functions`` (to check them: see :mod:`convkit.sha256`)."""
    cdef unsigned char digest[32]
    cdef const unsigned char *p = &data[0] if data.shape[0] else <const unsigned char *> b""
    init, update, final = functions
    _sha256_by(
        <_sha_init_fn> <uintptr_t> init, <_sha_update_fn> <uintptr_t> update,
        <_sha_final_fn> <uintptr_t> final, p, data.shape[0], digest,
    )
    return PyBytes_FromStringAndSize(<char *> digest, 32)


def digest_function():
    """The address of a C function that a thread without the GIL may call,
    ``void f(const unsigned char *utf8, size_t n, unsigned char *scratch, unsigned char
    *digest)``: the SHA-256 digest of the normalised form of the UTF-8 text (as
    :func:`normalised_utf8` has it) into ``digest`` (32 bytes), with ``scratch`` (``n`` bytes)
    to normalise in; None when libcrypto's SHA-256 is not bound (see :func:`bind_sha256`)."""
    if not _sha_looked_up:
        _look_up_sha256()
    return None if _sha_init == NULL else <uintptr_t> &_utf8_digest


cdef int _room_for(unsigned char **buf, Py_ssize_t *cap, Py_ssize_t need) except -1:
    """Grows ``buf[0]`` (``cap[0]`` bytes) to hold ``need`` bytes, at least doubling."""
    cdef Py_ssize_t capacity
    cdef unsigned char *grown
    if need <= cap[0]:
        return 0
    capacity = max(need, 2 * cap[0], 4096)
    grown = <unsigned char *> realloc(buf[0], capacity)
    if grown == NULL:
        raise MemoryError()
    buf[0] = grown
    cap[0] = capacity
    return 0


cdef inline void _put_length(unsigned char *at, Py_ssize_t n) noexcept nogil:
    cdef int k
    cdef unsigned long long v = <unsigned long long> n
    for k in range(8):
        at[k] = <unsigned char> (v >> (56 - 8 * k))


cdef inline Py_ssize_t _room(str text) noexcept:
    """Bytes enough for the normalised text: one a character for ASCII; otherwise 3 below
    U+10000 and 4 above, which take 2 in UTF-16 terms but 1 code point here: 4 bounds it."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    return n + 1 if PyUnicode_IS_ASCII(text) else 4 * n + 1


cdef inline Py_ssize_t _normalised_into(str text, unsigned char *out) noexcept:
    """Writes the normalised UTF-8 of ``text`` to ``out`` (room: :func:`_room`); its length."""
    cdef const char *utf8
    cdef Py_ssize_t n
    if PyUnicode_IS_ASCII(text):
        return _utf8_into(<const unsigned char *> PyUnicode_DATA(text),
                          PyUnicode_GET_LENGTH(text), out)
    # CPython's encoder and the UTF-8 scan take a third of the time of a step per character
    # (the str keeps the UTF-8, as it does for orjson when the turn is written); a lone
    # surrogate, which UTF-8 cannot hold, is written here instead.
    utf8 = _utf8_or_null(text, &n)
    if utf8 != NULL:
        return _utf8_into(<const unsigned char *> utf8, n, out)
    return _unicode_into(text, out)


cdef Py_ssize_t _unicode_into(str text, unsigned char *out) noexcept:
    """Writes the normalised UTF-8 of a text that is not ASCII to ``out``; its length."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef Py_ssize_t i, o = 0
    cdef Py_UCS4 ch
    cdef unsigned int cp
    cdef bint pending_space = False
    for i in range(n):
        ch = PyUnicode_READ(kind, data, i)
        if Py_UNICODE_ISSPACE(ch):
            pending_space = o > 0
            continue
        if pending_space:
            out[o] = 0x20
            o += 1
            pending_space = False
        cp = <unsigned int> ch
        if cp < 0x80:
            out[o] = <unsigned char> cp
            o += 1
        elif cp < 0x800:
            out[o] = <unsigned char> (0xC0 | (cp >> 6))
            out[o + 1] = <unsigned char> (0x80 | (cp & 0x3F))
            o += 2
        elif cp < 0x10000:
            out[o] = <unsigned char> (0xE0 | (cp >> 12))
            out[o + 1] = <unsigned char> (0x80 | ((cp >> 6) & 0x3F))
            out[o + 2] = <unsigned char> (0x80 | (cp & 0x3F))
            o += 3
        else:
            out[o] = <unsigned char> (0xF0 | (cp >> 18))
            out[o + 1] = <unsigned char> (0x80 | ((cp >> 12) & 0x3F))
            out[o + 2] = <unsigned char> (0x80 | ((cp >> 6) & 0x3F))
            out[o + 3] = <unsigned char> (0x80 | (cp & 0x3F))
            o += 4
    return o


cdef size_t _utf8_into(const unsigned char *s, size_t n, unsigned char *out) noexcept nogil:
    """The normalised form of the UTF-8 text ``s`` (valid UTF-8), written to ``out`` (room:
    ``n``); its length. Spans already in normal form (words with single spaces between them)
    are copied whole; only the white space around them is rewritten."""
    cdef size_t i = 0, o = 0, j, w
    cdef bint gap = False
    while i < n:
        while i < n:  # white space
            w = _space_width(s + i, n - i)
            if not w:
                break
            i += w
            gap = True
        if i >= n:
            break
        if gap and o:
            out[o] = 0x20
            o += 1
        gap = False
        while True:  # words with single spaces between them, up to other white space
            j = _next_irregular(s, i, n)
            memcpy(out + o, s + i, j - i)
            o += j - i
            i = j
            if j >= n or _space_width(s + j, n - j):
                break
            out[o] = s[j]  # a byte that might have started white space, and did not
            o += 1
            i = j + 1
    return o


cdef inline size_t _space_width(const unsigned char *s, size_t left) noexcept nogil:
    """The bytes of the UTF-8 character at ``s`` when it is white space (as ``str.isspace``
    has it: Unicode spaces too, all below U+10000), else 0."""
    cdef Py_UCS4 cp
    cdef unsigned char c = s[0]
    if c < 0x80:
        return _ASCII_SPACE[c]
    if 0xC2 <= c <= 0xDF and left >= 2:
        cp = ((c & 0x1F) << 6) | (s[1] & 0x3F)
        return 2 if Py_UNICODE_ISSPACE(cp) else 0
    if 0xE0 <= c <= 0xEF and left >= 3:
        cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F)
        return 3 if Py_UNICODE_ISSPACE(cp) else 0
    return 0


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* str.isspace of each ASCII byte (filled from Python at import; 0 above 127). */
    static unsigned char convkit_ascii_space[256];
    /* Whether a byte is ASCII white space or may start a Unicode one in UTF-8 (C2: U+0085,
       U+00A0; E1: U+1680; E2: U+2000-U+205F; E3: U+3000). A test checks the list against
       every code point. */
    static int convkit_may_space(unsigned char c) {
        return convkit_ascii_space[c] || c == 0xC2 || (c >= 0xE1 && c <= 0xE3);
    }
    #if defined(__SSE2__)
    /* 0xff where a byte of 16 is convkit_may_space other than the space: \t \n \v \f \r,
       \x1c-\x1f, C2 and E1-E3 (as ranges a vector compare can test). */
    static __m128i convkit_other_space16(__m128i v) {
        __m128i a = _mm_sub_epi8(v, _mm_set1_epi8(0x09));
        __m128i b = _mm_sub_epi8(v, _mm_set1_epi8(0x1c));
        __m128i c = _mm_sub_epi8(v, _mm_set1_epi8((char) 0xE1));
        return _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(a, _mm_set1_epi8(4)), a),
                         _mm_cmpeq_epi8(_mm_min_epu8(b, _mm_set1_epi8(3)), b)),
            _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(c, _mm_set1_epi8(2)), c),
                         _mm_cmpeq_epi8(v, _mm_set1_epi8((char) 0xC2))));
    }
    #endif
    /* The first position at or after j, in UTF-8 text, where white space may not be one space
       between two words: a byte that is or may start white space other than the space, a
       space followed by a space or such a byte, or a space that ends the text; n when there
       is none. Sixteen bytes a step where SSE2 is there (every x86-64), a byte a step
       otherwise. */
    static size_t convkit_next_irregular(const unsigned char *src, size_t j, size_t n) {
    #if defined(__SSE2__)
        const __m128i space = _mm_set1_epi8(0x20);
        while (j + 16 < n) {  /* the next byte of the last lane is read too */
            __m128i x = _mm_loadu_si128((const __m128i *)(src + j));
            __m128i y = _mm_loadu_si128((const __m128i *)(src + j + 1));
            __m128i y_space = _mm_or_si128(_mm_cmpeq_epi8(y, space), convkit_other_space16(y));
            __m128i hit = _mm_or_si128(convkit_other_space16(x),
                                       _mm_and_si128(_mm_cmpeq_epi8(x, space), y_space));
            int m = _mm_movemask_epi8(hit);
            if (m)
                return j + (size_t) __builtin_ctz((unsigned) m);
            j += 16;
        }
    #endif
        for (; j < n; j++) {
            unsigned char c = src[j];
            if (c == 0x20 ? (j + 1 == n || convkit_may_space(src[j + 1])) : convkit_may_space(c))
                return j;
        }
        return n;
    }
    """
    size_t _next_irregular "convkit_next_irregular" (
        const unsigned char *src, size_t j, size_t n
    ) noexcept nogil
    unsigned char _ASCII_SPACE "convkit_ascii_space"[256]


# str.isspace for the 128 ASCII code points (what str.split splits on): \t \n \v \f \r,
# \x1c-\x1f and the space; 128-255 never occur in an ASCII string.
for _c in range(256):
    _ASCII_SPACE[_c] = 1 if _c < 128 and chr(_c).isspace() else 0


def contains_folded(text, words):
    """Whether one of ``words`` (ASCII) occurs in ``text.casefold()``.

    The text is searched where it lies when it is ASCII, and otherwise through a copy of one
    byte per character (ASCII lowered, the rest as a byte no word has), without
    case-folding it: only 19 characters fold to anything with ASCII in it (``ß`` to ``ss``,
    ``K`` (Kelvin) to ``k``, ``ﬁ`` to ``fi``...), and a text with one of those is case-folded,
    as the twin does."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    words = tuple(words)
    cdef Py_ssize_t nw = len(words)
    cdef bint empty = False
    for w in words:
        if not isinstance(w, str) or not PyUnicode_IS_ASCII(w):
            raise ValueError(f"expected ASCII words, got {w!r}")
        if not w:
            empty = True
    if empty:
        return True  # as "" in any text
    if nw == 0:
        return False
    if nw > 32:
        return _contains_casefolded(text, words)
    cdef const unsigned char *wd[32]
    cdef Py_ssize_t wl[32]
    cdef Py_ssize_t k
    for k in range(nw):
        w = words[k]
        wd[k] = <const unsigned char *> PyUnicode_DATA(w)
        wl[k] = PyUnicode_GET_LENGTH(w)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    if PyUnicode_IS_ASCII(text):
        return _search(<const unsigned char *> PyUnicode_DATA(text), n, wd, wl, nw)
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef unsigned char *folded = <unsigned char *> malloc(n + 1)
    cdef Py_ssize_t i
    cdef unsigned int ch
    if folded == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            ch = <unsigned int> PyUnicode_READ(kind, data, i)
            if ch < 0x80:
                folded[i] = _ASCII_LOWER[ch]
            elif ch < 0x10000 and _FOLDS_TO_ASCII[ch >> 3] & (1 << (ch & 7)):
                return _contains_casefolded(text, words)
            else:
                folded[i] = 0x80
        return _search(folded, n, wd, wl, nw)
    finally:
        free(folded)


cdef bint _contains_casefolded(object text, tuple words) except -1:
    folded = text.casefold()
    for w in words:
        if w in folded:
            return True
    return False


cdef bint _search(
    const unsigned char *s, Py_ssize_t n, const unsigned char **wd, Py_ssize_t *wl, Py_ssize_t nw
) noexcept nogil:
    """Whether a word occurs in ``s`` with ASCII case ignored: thirty-two or sixteen starting
    positions a step where AVX2 or SSE2 is there, then Horspool's search for the rest."""
    cdef Py_ssize_t resume = 0
    if _find_folded16(s, n, wd, wl, nw, &resume):
        return True
    return _horspool(s + resume, n - resume, wd, wl, nw)


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* Whether one of the nw words (lower case ASCII) starts, in any ASCII case, at a position
       of s below *resume, which it sets: where the caller's search goes on. Sixteen positions
       a step (thirty-two with AVX2): a position is a candidate when its byte and the bytes the
       word's second and last ones would be at all match, bit 0x20 (the ASCII case bit) aside;
       candidates are compared whole. On text, the three bytes rule out almost every position
       (two left one in 160 on ShareGPT, each a mispredicted branch), where a byte-by-byte
       search looks at each one. Without SSE2, nothing is searched and *resume is 0. */
    static int convkit_word_at(const unsigned char *at, const unsigned char *w, Py_ssize_t m) {
        Py_ssize_t j;
        for (j = 0; j < m; j++) {
            unsigned char c = at[j];
            if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != w[j])
                return 0;
        }
        return 1;
    }
    #if defined(__SSE2__) && defined(__GNUC__) && defined(__x86_64__)
    #include <immintrin.h>
    #define CONVKIT_AVX2 1
    /* The same search, thirty-two positions a step, on processors with AVX2 (the test is made
       once, at run time: the extension is built for any x86-64). From *i, which it advances. */
    __attribute__((target("avx2")))
    static int convkit_find_folded32(const unsigned char *s, Py_ssize_t n,
                                     const unsigned char **wd, const Py_ssize_t *wl,
                                     Py_ssize_t nw, Py_ssize_t longest, Py_ssize_t *i) {
        const __m256i fold = _mm256_set1_epi8(0x20);
        Py_ssize_t k, p = *i;
        for (; p + longest - 1 + 32 <= n; p += 32) {
            __m256i x = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(s + p)), fold);
            for (k = 0; k < nw; k++) {
                Py_ssize_t m = wl[k];
                const unsigned char *w = wd[k];
                Py_ssize_t h = m > 2 ? 1 : m - 1;
                __m256i y = _mm256_or_si256(
                    _mm256_loadu_si256((const __m256i *)(s + p + m - 1)), fold);
                __m256i z = _mm256_or_si256(
                    _mm256_loadu_si256((const __m256i *)(s + p + h)), fold);
                unsigned bits = (unsigned)_mm256_movemask_epi8(_mm256_and_si256(
                    _mm256_and_si256(
                        _mm256_cmpeq_epi8(x, _mm256_set1_epi8((char)(w[0] | 0x20))),
                        _mm256_cmpeq_epi8(z, _mm256_set1_epi8((char)(w[h] | 0x20)))),
                    _mm256_cmpeq_epi8(y, _mm256_set1_epi8((char)(w[m - 1] | 0x20)))));
                while (bits) {
                    if (convkit_word_at(s + p + __builtin_ctz(bits), w, m)) {
                        *i = p;
                        return 1;
                    }
                    bits &= bits - 1;
                }
            }
        }
        *i = p;
        return 0;
    }
    #endif
    static int convkit_find_folded16(const unsigned char *s, Py_ssize_t n,
                                     const unsigned char **wd, const Py_ssize_t *wl,
                                     Py_ssize_t nw, Py_ssize_t *resume) {
        Py_ssize_t i = 0;
    #if defined(__SSE2__)
        Py_ssize_t k, longest = 0;
        const __m128i fold = _mm_set1_epi8(0x20);
        for (k = 0; k < nw; k++)
            if (wl[k] > longest)
                longest = wl[k];
    #if defined(CONVKIT_AVX2)
        if (longest > 0 && __builtin_cpu_supports("avx2")
                && convkit_find_folded32(s, n, wd, wl, nw, longest, &i))
            return 1;
    #endif
        if (longest > 0) {
            for (; i + longest - 1 + 16 <= n; i += 16) {
                __m128i x = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + i)), fold);
                for (k = 0; k < nw; k++) {
                    Py_ssize_t m = wl[k];
                    const unsigned char *w = wd[k];
                    Py_ssize_t h = m > 2 ? 1 : m - 1;
                    __m128i y = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + i + m - 1)), fold);
                    __m128i z = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + i + h)), fold);
                    unsigned bits = (unsigned)_mm_movemask_epi8(_mm_and_si128(
                        _mm_and_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8((char)(w[0] | 0x20))),
                                      _mm_cmpeq_epi8(z, _mm_set1_epi8((char)(w[h] | 0x20)))),
                        _mm_cmpeq_epi8(y, _mm_set1_epi8((char)(w[m - 1] | 0x20)))));
                    while (bits) {
                        if (convkit_word_at(s + i + __builtin_ctz(bits), w, m))
                            return 1;
                        bits &= bits - 1;
                    }
                }
            }
        }
    #endif
        *resume = i;
        return 0;
    }
    """
    bint _find_folded16 "convkit_find_folded16" (
        const unsigned char *s, Py_ssize_t n, const unsigned char **wd, Py_ssize_t *wl,
        Py_ssize_t nw, Py_ssize_t *resume
    ) noexcept nogil


cdef bint _horspool(
    const unsigned char *s, Py_ssize_t n, const unsigned char **wd, Py_ssize_t *wl, Py_ssize_t nw
) noexcept nogil:
    """Whether a word occurs in ``s`` with ASCII case ignored: Horspool's search for all the
    words at once, on their first m bytes (m: the shortest word's length), both cases in the
    tables. A window's last byte says how far the next window can start, a few bytes on
    English text, where a byte-by-byte scan looks at every one."""
    cdef Py_ssize_t shift[256]
    cdef unsigned int last[256]
    cdef Py_ssize_t i, j, k, m = n + 1
    cdef unsigned int hit
    cdef unsigned char c
    for k in range(nw):
        if wl[k] < m:
            m = wl[k]
    if m > n:
        return False
    for j in range(256):
        shift[j] = m
        last[j] = 0
    for k in range(nw):
        for j in range(m - 1):
            c = wd[k][j]
            if shift[c] > m - 1 - j:
                shift[c] = shift[_ASCII_UPPER[c]] = m - 1 - j
        c = wd[k][m - 1]
        last[c] |= 1u << k
        last[_ASCII_UPPER[c]] |= 1u << k
    i = 0
    while i <= n - m:
        c = s[i + m - 1]
        hit = last[c]
        if hit:
            for k in range(nw):
                if hit & (1u << k) and wl[k] <= n - i:
                    j = 0
                    while j < wl[k] and _ASCII_LOWER[s[i + j]] == wd[k][j]:
                        j += 1
                    if j == wl[k]:
                        return True
        i += shift[c]
    return False


#: The characters beyond ASCII whose case folding has ASCII in it (a test asks str.casefold
#: that these are all, for the Python it runs on).
FOLDS_TO_ASCII = (
    "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a"
    "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
)
cdef unsigned char _FOLDS_TO_ASCII[0x2000]  # a bit per character below U+10000
memset(_FOLDS_TO_ASCII, 0, sizeof(_FOLDS_TO_ASCII))
for _f in FOLDS_TO_ASCII:
    _FOLDS_TO_ASCII[ord(_f) >> 3] |= 1 << (ord(_f) & 7)


# str.lower and str.upper for ASCII: the other case of a letter, every other byte as it is.
cdef unsigned char _ASCII_LOWER[256]
cdef unsigned char _ASCII_UPPER[256]
for _c in range(256):
    _ASCII_LOWER[_c] = _c + 32 if 0x41 <= _c <= 0x5A else _c
    _ASCII_UPPER[_c] = _c - 32 if 0x61 <= _c <= 0x7A else _c
