"""Compiled byte and character scans for the reader and for dedup (twin: ``_scan_py.py``).

Both are single passes that would otherwise cost a Python step per token or per word: finding
where a JSON array element ends (so that orjson can decode it from its bytes) and the white
space collapsing dedup does before hashing.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

__all__ = ["element_end", "has_long_number", "normalised_utf8"]


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
            i += 1
            while i < n:
                c = buf[i]
                if c == 0x5C:
                    i += 2
                elif c == 0x22:
                    break
                else:
                    i += 1
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
        while j < n:
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


# str.isspace for the 128 ASCII code points (what str.split splits on): \t \n \v \f \r,
# \x1c-\x1f and the space; 128-255 never occur in an ASCII string.
cdef unsigned char _ASCII_SPACE[256]
for _c in range(256):
    _ASCII_SPACE[_c] = 1 if _c < 128 and chr(_c).isspace() else 0
