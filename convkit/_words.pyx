"""Token counts remembered per word, for tokenizers whose text cuts into independent words
(twin: ``_words_py.py``; see :mod:`convkit.normalise` for which ones, and why it is exact).

Llama's normalizer writes the mark ``▁`` before a text and for each space, and the cut
(``normalise.word_splitter``) starts a word at each run of marks; a *stop*, a character no merge
can join to a neighbour (``normalise.word_stops``), is a word alone and ends the word before it.
The tokens of a text are then the tokens of its words, each tokenised alone (a word after a stop
has no mark in front). Text is mostly words seen before, so a table
from word to token count answers most words with a hash and a compare, where the tokenizer
builds a normalised string, an encoding and a token string per piece.

The table reads the raw text: a space and the mark are both the mark, and the text's first
word has one more in front (the normalizer's prepend). A word is never made into a ``str``
unless it is new. Two calls per batch: :meth:`WordCounts.scan` sums the words it knows and
returns the new ones; :meth:`WordCounts.totals` takes their counts, remembers them and returns
each text's total.
"""
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

__all__ = ["WordCounts"]


cdef extern from "Python.h":
    int PyUnicode_KIND(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    Py_UCS4 PyUnicode_READ(int kind, void *data, Py_ssize_t index) nogil
    int PyUnicode_READY(object o) except -1


cdef struct Entry:
    uint64_t hash
    PyObject *key       # the word as the tokenizer sees it: marks, then the rest (owned); NULL
                        # while the scan that met it first runs
    void *data          # where the rest's characters are: in the key, or (while the scan
    Py_ssize_t offset   # runs) in the text it was met in, at data[offset:offset + length]
    Py_ssize_t source   # that text's index, while the scan runs
    int32_t length      # the rest's characters
    int32_t kind        # their PyUnicode kind (1, 2 or 4 bytes)
    int32_t marks       # how many marks it starts with
    int32_t count       # its tokens; -1 while unknown (between scan and totals)


cdef enum:
    _STOP_BYTES = 8192  # a bit per character below U+10000


cdef struct Text:
    int kind
    void *data
    Py_ssize_t length


cdef inline uint64_t _mix(uint64_t h) noexcept nogil:
    # The last step of splitmix64: spreads the FNV hash's low bits, which pick the slot.
    h ^= h >> 30
    h *= 0xbf58476d1ce4e5b9ULL
    h ^= h >> 27
    h *= 0x94d049bb133111ebULL
    h ^= h >> 31
    return h | 1  # never 0: an empty slot holds index -1, but a zero hash is one less case


cdef class WordCounts:
    """Word → token count for one tokenizer, holding at most about ``limit`` words.

    When a scan starts with more than ``limit`` words remembered it forgets them all (the
    frequent ones come back within a batch); one batch's new words are always held, so the
    counts of a call are always complete. Not for two threads at once: a scan reads its texts
    without the GIL, and the caller holds a lock around scan and totals.
    """

    cdef Entry *entries
    cdef Py_ssize_t n_entries, cap_entries
    cdef int32_t *slots           # open addressing, linear probing; -1 is empty
    cdef Py_ssize_t n_slots       # a power of two, at least twice n_entries
    cdef Py_UCS4 mark
    cdef unsigned char stops[_STOP_BYTES]  # bit c: character c (below U+10000) is a word alone
    cdef readonly Py_ssize_t limit
    # Between scan and totals: each text's sum of known words, and the (text, entry) pairs of
    # the words whose count is still unknown.
    cdef int64_t *sums
    cdef Py_ssize_t n_texts
    cdef Py_ssize_t *waiting
    cdef Py_ssize_t n_waiting, cap_waiting
    cdef Py_ssize_t first_new     # entries from here on were new in the last scan
    cdef bint scanned

    def __cinit__(self, str mark, Py_ssize_t limit=1 << 18, bytes stops=None):
        if len(mark) != 1:
            raise ValueError(f"the mark must be one character, got {mark!r}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if stops is not None and len(stops) != _STOP_BYTES:
            raise ValueError(f"stops must be {_STOP_BYTES} bytes, got {len(stops)}")
        memset(self.stops, 0, _STOP_BYTES)
        if stops is not None:
            memcpy(self.stops, <const char *>stops, _STOP_BYTES)
        self.mark = mark[0]
        self.limit = limit
        self.entries = NULL
        self.slots = NULL
        self.sums = NULL
        self.waiting = NULL
        self._reset()

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        cdef Py_ssize_t i
        if self.entries != NULL:
            for i in range(self.n_entries):
                Py_XDECREF(self.entries[i].key)
            free(self.entries)
            self.entries = NULL
        free(self.slots)
        self.slots = NULL
        free(self.sums)
        self.sums = NULL
        free(self.waiting)
        self.waiting = NULL
        self.n_entries = self.cap_entries = self.n_slots = 0
        self.n_texts = self.n_waiting = self.cap_waiting = 0

    cdef int _reset(self) except -1:
        cdef Py_ssize_t i
        self._release()
        self.cap_entries = 1024
        self.entries = <Entry *>malloc(self.cap_entries * sizeof(Entry))
        self.n_slots = 2048
        self.slots = <int32_t *>malloc(self.n_slots * sizeof(int32_t))
        if self.entries == NULL or self.slots == NULL:
            self._release()
            raise MemoryError()
        for i in range(self.n_slots):
            self.slots[i] = -1
        self.first_new = 0
        self.scanned = False
        return 0

    def __len__(self):
        """How many words are remembered (those of an unfinished scan included)."""
        return self.n_entries

    def clear(self):
        """Forget every word, and any scan whose totals were not taken."""
        self._reset()

    cdef int _grow_slots(self) noexcept nogil:
        cdef Py_ssize_t n = self.n_slots * 2, i, j
        cdef int32_t *slots = <int32_t *>malloc(n * sizeof(int32_t))
        if slots == NULL:
            return -1
        for i in range(n):
            slots[i] = -1
        for i in range(self.n_entries):
            j = <Py_ssize_t>(self.entries[i].hash & <uint64_t>(n - 1))
            while slots[j] != -1:
                j = (j + 1) & (n - 1)
            slots[j] = <int32_t>i
        free(self.slots)
        self.slots = slots
        self.n_slots = n
        return 0

    cdef Py_ssize_t _find(
        self, uint64_t h, int32_t marks, int kind, void *data, Py_ssize_t start, Py_ssize_t n,
        Py_ssize_t source
    ) noexcept nogil:
        """The entry of the word (``marks`` marks, then ``data[start:start + n]``), added with
        an unknown count when new; -1 when memory ran out."""
        cdef Py_ssize_t j = <Py_ssize_t>(h & <uint64_t>(self.n_slots - 1)), k, e
        cdef Entry *entry
        while True:
            e = self.slots[j]
            if e == -1:
                break
            entry = &self.entries[e]
            if entry.hash == h and entry.marks == marks and entry.length == n:
                for k in range(n):
                    if PyUnicode_READ(entry.kind, entry.data, entry.offset + k) != PyUnicode_READ(
                        kind, data, start + k
                    ):
                        break
                else:
                    return e
            j = (j + 1) & (self.n_slots - 1)
        if self.n_entries >= 0x7FFFFFFF or n > 0x7FFFFFFF:
            return -1
        if self.n_entries == self.cap_entries:
            entry = <Entry *>realloc(self.entries, 2 * self.cap_entries * sizeof(Entry))
            if entry == NULL:
                return -1
            self.entries = entry
            self.cap_entries *= 2
        e = self.n_entries
        entry = &self.entries[e]
        entry.hash = h
        entry.key = NULL
        entry.data = data
        entry.offset = start
        entry.source = source
        entry.length = <int32_t>n
        entry.kind = kind
        entry.marks = marks
        entry.count = -1
        self.n_entries += 1
        self.slots[j] = <int32_t>e
        if 2 * self.n_entries > self.n_slots and self._grow_slots() < 0:
            return -1
        return e

    cdef int _wait(self, Py_ssize_t text, Py_ssize_t entry) noexcept nogil:
        cdef Py_ssize_t *grown
        if self.n_waiting + 2 > self.cap_waiting:
            grown = <Py_ssize_t *>realloc(
                self.waiting, max(1024, 2 * self.cap_waiting) * sizeof(Py_ssize_t)
            )
            if grown == NULL:
                return -1
            self.waiting = grown
            self.cap_waiting = max(1024, 2 * self.cap_waiting)
        self.waiting[self.n_waiting] = text
        self.waiting[self.n_waiting + 1] = entry
        self.n_waiting += 2
        return 0

    def scan(self, list texts):
        """Cut each text into words: sum the counts of the known ones, and return the new
        ones (each once, as the tokenizer sees them, in the order first met), whose counts
        :meth:`totals` takes. Starts by forgetting every word when more than ``limit`` are
        held, and a scan whose totals were not taken."""
        cdef Py_ssize_t t, e, n_texts = len(texts)
        cdef Text *view
        cdef bint failed
        if self.scanned or self.n_entries > self.limit:
            self._reset()  # a scan's new words have no counts until totals
        self.n_waiting = 0
        self.first_new = self.n_entries
        free(self.sums)
        self.sums = <int64_t *>malloc(max(1, n_texts) * sizeof(int64_t))
        view = <Text *>malloc(max(1, n_texts) * sizeof(Text))
        if self.sums == NULL or view == NULL:
            free(view)
            self._reset()
            raise MemoryError()
        self.n_texts = n_texts
        self.scanned = True
        # Its own list: the texts stay alive while the scan reads them without the GIL, and
        # new words are cut from the texts it read, whatever the caller's list holds by then.
        texts = list(texts)
        try:
            for t in range(n_texts):
                text = texts[t]
                if not isinstance(text, str):
                    raise TypeError(f"texts to count must be str, got {type(text).__name__}")
                PyUnicode_READY(text)  # a legacy string (Python < 3.12) gets its data
                view[t].kind = PyUnicode_KIND(text)
                view[t].data = PyUnicode_DATA(text)
                view[t].length = PyUnicode_GET_LENGTH(text)
        except BaseException:
            free(view)
            self._reset()
            raise
        with nogil:
            failed = self._scan(view, n_texts) < 0
        free(view)
        if failed:
            self._reset()
            raise MemoryError()
        new = []
        try:
            for e in range(self.first_new, self.n_entries):
                word = self._key(&self.entries[e], texts)
                new.append(word)
        except BaseException:
            self._reset()
            raise
        return new

    cdef object _key(self, Entry *entry, list texts):
        """The new word ``entry`` as a str, which it keeps, and then points into."""
        word = chr(self.mark) * entry.marks
        if entry.length:
            word += (<str>texts[entry.source])[entry.offset:entry.offset + entry.length]
        Py_INCREF(word)
        entry.key = <PyObject *>word
        entry.kind = PyUnicode_KIND(word)
        entry.data = PyUnicode_DATA(word)
        entry.offset = entry.marks
        return word

    cdef int _scan(self, Text *view, Py_ssize_t n_texts) noexcept nogil:
        cdef Py_ssize_t t, i, n, start, e
        cdef int kind
        cdef void *data
        cdef Py_UCS4 c = 0, mark = self.mark
        cdef Py_ssize_t marks
        cdef uint64_t h
        cdef int64_t *sums = self.sums
        for t in range(n_texts):
            sums[t] = 0
            n = view[t].length
            if n == 0:
                continue  # the normalizer prepends nothing to an empty text
            kind = view[t].kind
            data = view[t].data
            i = 0
            marks = 1  # the prepended one
            while True:
                while i < n:
                    c = PyUnicode_READ(kind, data, i)
                    if c != 32 and c != mark:
                        break
                    marks += 1
                    i += 1
                start = i
                h = 0xcbf29ce484222325ULL ^ <uint64_t>marks
                while i < n:
                    c = PyUnicode_READ(kind, data, i)
                    if c == 32 or c == mark or self._stop(c):
                        break
                    h = (h ^ <uint64_t>c) * 0x100000001b3ULL
                    i += 1
                if marks > 0x7FFFFFFF:
                    return -1
                if (marks or i > start) and self._add(h, <int32_t>marks, kind, data, start, i, t) < 0:
                    return -1
                if i >= n:
                    break
                marks = 0
                if c != 32 and c != mark:  # a stop: a word alone
                    h = (0xcbf29ce484222325ULL ^ <uint64_t>c) * 0x100000001b3ULL
                    if self._add(h, 0, kind, data, i, i + 1, t) < 0:
                        return -1
                    i += 1
                    if i >= n:
                        break
        return 0

    cdef inline bint _stop(self, Py_UCS4 c) noexcept nogil:
        cdef uint32_t u = <uint32_t>c
        return u < 0x10000 and (self.stops[u >> 3] >> (u & 7)) & 1

    cdef inline int _add(
        self, uint64_t h, int32_t marks, int kind, void *data, Py_ssize_t start, Py_ssize_t end,
        Py_ssize_t t
    ) noexcept nogil:
        """Count the word (``marks`` marks, then ``data[start:end]``) into text ``t``'s sum, or
        wait for its count; -1 when memory ran out."""
        cdef Py_ssize_t e = self._find(_mix(h), marks, kind, data, start, end - start, t)
        if e < 0:
            return -1
        if self.entries[e].count >= 0:
            self.sums[t] += self.entries[e].count
            return 0
        return self._wait(t, e)

    def totals(self, list counts):
        """Each text's token count, given the counts of the words the last :meth:`scan`
        returned (in its order); the words are remembered with them."""
        cdef Py_ssize_t i, e, new = self.n_entries - self.first_new
        cdef long long c
        if not self.scanned:
            raise RuntimeError("totals() needs a scan() first")
        if len(counts) != new:
            self._reset()
            raise ValueError(f"expected {new} counts, got {len(counts)}")
        try:
            for i in range(new):
                c = counts[i]
                if c < 0 or c > 0x7FFFFFFF:
                    raise ValueError(f"a token count must be in 0..2**31-1, got {c}")
                self.entries[self.first_new + i].count = <int32_t>c
        except BaseException:
            self._reset()
            raise
        for i in range(0, self.n_waiting, 2):
            self.sums[self.waiting[i]] += self.entries[self.waiting[i + 1]].count
        out = [self.sums[i] for i in range(self.n_texts)]
        self.scanned = False
        self.n_waiting = 0
        self.first_new = self.n_entries
        return out
