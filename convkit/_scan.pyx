"""Compiled byte and character scans for the reader and for dedup (twin: ``_scan_py.py``).

Each is a single pass that would otherwise cost a Python step per token or per word, or a
copy of the text: finding where a JSON array element ends (so that orjson can decode it from
its bytes), the white space collapsing dedup does before hashing, and the blocked-phrase
filter's case-blind pretest.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcpy, memset

__all__ = ["contains_folded", "count_newlines", "element_end", "has_long_number", "normalised_utf8"]


cdef extern from "Python.h":
    bint Py_UNICODE_ISSPACE(Py_UCS4 ch) nogil
    bint PyUnicode_IS_ASCII(object o)


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
    if PyUnicode_IS_ASCII(text):
        return _normalised_ascii(text)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    # At most 3 bytes per code point below U+10000 and 4 above, which take 2 in UTF-16 terms
    # but 1 code point here: 4 per code point bounds it.
    cdef unsigned char *out = <unsigned char *> malloc(4 * n + 1)
    cdef Py_ssize_t i, o = 0
    cdef Py_UCS4 ch
    cdef unsigned int cp
    cdef bint pending_space = False
    if out == NULL:
        raise MemoryError()
    try:
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
        return PyBytes_FromStringAndSize(<char *> out, o)
    finally:
        free(out)


cdef bytes _normalised_ascii(str text):
    """The ASCII case (most turns): its characters are its UTF-8 bytes. Spans already in
    normal form (words with single spaces between them) are copied whole; only the white
    space around them is rewritten. Then the result is cut to length."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef const unsigned char *src = <const unsigned char *> PyUnicode_DATA(text)
    cdef object result = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char *out = <unsigned char *> PyBytes_AS_STRING(result)
    cdef Py_ssize_t i = 0, j, o = 0
    while i < n and _ASCII_SPACE[src[i]]:
        i += 1
    while i < n:
        # src[i] starts a word: the span runs while white space is one space between words.
        j = i
        while True:
            j = _past_visible(src, j, n)
            if j >= n:
                break
            if not _ASCII_SPACE[src[j]]:
                j += 1
            elif src[j] == 0x20 and j + 1 < n and not _ASCII_SPACE[src[j + 1]]:
                j += 2
            else:
                break
        memcpy(out + o, src + i, j - i)
        o += j - i
        while j < n and _ASCII_SPACE[src[j]]:
            j += 1
        if j < n:
            out[o] = 0x20
            o += 1
        i = j
    if o == n:
        return result
    return result[:o]


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* The first byte at or after j that is a space or a control (<= 0x20), in ASCII text:
       eight bytes a step. (x - 0x21..) & ~x & 0x80.. flags every byte below 0x21 of ASCII
       bytes; a borrow can flag a byte after a flagged one, never before, so the lowest
       flagged byte is exact. Little-endian keeps the lowest address in the low bits. */
    static Py_ssize_t convkit_past_visible(const unsigned char *src, Py_ssize_t j, Py_ssize_t n) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        while (j + 8 <= n) {
            uint64_t x, m;
            memcpy(&x, src + j, 8);
            m = (x - 0x2121212121212121ULL) & ~x & 0x8080808080808080ULL;
            if (m)
                return j + (__builtin_ctzll(m) >> 3);
            j += 8;
        }
    #endif
        while (j < n && src[j] > 0x20)
            j++;
        return j;
    }
    """
    Py_ssize_t _past_visible "convkit_past_visible" (
        const unsigned char *src, Py_ssize_t j, Py_ssize_t n
    ) noexcept nogil


# str.isspace for the 128 ASCII code points (what str.split splits on): \t \n \v \f \r,
# \x1c-\x1f and the space; 128-255 never occur in an ASCII string.
cdef unsigned char _ASCII_SPACE[256]
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
        return _horspool(<const unsigned char *> PyUnicode_DATA(text), n, wd, wl, nw)
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
        return _horspool(folded, n, wd, wl, nw)
    finally:
        free(folded)


cdef bint _contains_casefolded(object text, tuple words) except -1:
    folded = text.casefold()
    for w in words:
        if w in folded:
            return True
    return False


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
