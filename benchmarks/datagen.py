"""The one seeded data generator of the benchmarks: ShareGPT records with page-HTML answers.

Both tiers use it (STYLE habit 11): the pytest-benchmark groups and ``compare.py`` when the real
corpus is absent. Records look like a raw sharegpt.com dump of 2023: ``{"id", "conversations":
[{"from": "human"|"gpt", "value"}]}``, human turns in plain text, gpt turns in the ChatGPT
page's markup -- the ``markdown prose`` wrapper (or the older bare ``<div>``), paragraphs with
inline code, bold and links, nested lists, headings, tables, KaTeX math (MathML with its TeX
annotation plus the HTML rendering), and code blocks with the language label, the "Copy code"
button (newer form) or bare label (older form) and hljs highlighting spans. The text is drawn
from a fixed word list, so nothing is copied from real conversations.

Everything is a pure function of ``(seed, index)``: record ``i`` of seed ``s`` is the same
whatever ``n`` is, on every Python version (``random.Random`` with an int seed is stable).

A small share of records carries what real dumps carry and the filters act on: a first turn from
gpt, a trailing human turn, an empty answer, a blocked word, the rate-limit message, a "2 / 2"
edit counter glued to a human turn, and exact duplicates under a new id.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "WORDS",
    "default_tokenizer",
    "gpt_turn",
    "gpt_turns",
    "load_rendered",
    "record",
    "records",
    "rendered_corpus",
    "shared_data",
    "write_json",
]

REPO = Path(__file__).resolve().parent.parent

# A fixed vocabulary: common English and programming words. Changing it changes every figure.
WORDS = tuple(
    """
    the of and to in is that for it as with be on not this by are or from at which an but have
    can all one will more when there if some what about into than them out time only its two
    other would first then these may like new use each any most well also way even many such
    make after where through good should could very much over because data value function file
    user system model table list string number result error request server client query index
    memory thread process option config build test output input cache key page line code class
    method object array field type return default version update change create delete read
    write simple example step next first second better faster small large local remote network
    service database message account order price customer product market report design team
    project plan goal idea question answer reason problem solution approach support feature
    release security performance quality review note context history summary detail section
    chapter story water light house river garden city morning evening music paper window
    kitchen engine bridge
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_NAMES = (
    "foo",
    "bar",
    "baz",
    "item",
    "node",
    "count",
    "total",
    "value",
    "result",
    "buf",
    "key",
    "path",
    "name",
    "size",
    "data",
    "row",
    "col",
    "left",
    "right",
    "acc",
)
_LANGS = (
    "python",
    "javascript",
    "bash",
    "sql",
    "java",
    "cpp",
    "go",
    "rust",
    "json",
    "html",
    "typescript",
    "css",
)

WRAPPERS = (
    '<div class="markdown prose w-full break-words dark:prose-invert light">',
    '<div class="markdown prose w-full break-words dark:prose-invert dark">',
    "<div>",  # the older page form: <div><p>…
)
_COPY_ICON = (
    '<svg stroke="currentColor" fill="none" stroke-width="2" viewBox="0 0 24 24" '
    'stroke-linecap="round" stroke-linejoin="round" class="h-4 w-4" height="1em" width="1em" '
    'xmlns="http://www.w3.org/2000/svg"><path d="M16 4h2a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H6a2 2 '
    '0 0 1-2-2V6a2 2 0 0 1 2-2h2"></path><rect x="8" y="2" width="8" height="4" rx="1" ry="1">'
    "</rect></svg>"
)
_HEADER = (
    '<div class="flex items-center relative text-gray-200 bg-gray-800 px-4 py-2 text-xs font-sans">'
)
RATE_LIMIT = "Too many requests in 1 hour. Try again later."


class _Text:
    """Random prose, code and math from one ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    # -- prose ---------------------------------------------------------------------------

    def words(self, lo: int, hi: int) -> str:
        r = self.r
        return " ".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))

    def sentence(self) -> str:
        s = self.words(6, 22)
        return s[0].upper() + s[1:] + self.r.choice(".....?:!")

    def plain(self, lo: int, hi: int) -> str:
        return " ".join(self.sentence() for _ in range(self.r.randint(lo, hi)))

    def inline(self, lo: int, hi: int) -> str:
        """Sentences with inline markup, HTML-escaped."""
        r = self.r
        parts = []
        for _ in range(r.randint(lo, hi)):
            s = html.escape(self.sentence(), quote=False)
            roll = r.random()
            if roll < 0.25:
                ident = "_".join(r.choice(_NAMES) for _ in range(r.randint(1, 3)))
                s = s.replace(" ", f" <code>{ident}()</code> ", 1)
            elif roll < 0.35:
                w = r.choice(WORDS)
                s = s.replace(" ", f" <strong>{w} {r.choice(WORDS)}</strong> ", 1)
            elif roll < 0.42:
                s = s.replace(" ", f" <em>{r.choice(WORDS)}</em> ", 1)
            elif roll < 0.46:
                w = r.choice(WORDS)
                s += f' See <a href="https://example.com/{w}" target="_new">{w} docs</a>.'
            elif roll < 0.50:
                s += f" {self.katex(display=False)}"
            parts.append(s)
        return " ".join(parts)

    # -- blocks --------------------------------------------------------------------------

    def paragraph(self) -> str:
        return f"<p>{self.inline(1, 5)}</p>"

    def heading(self) -> str:
        level = self.r.choice((2, 3, 3, 4))
        return f"<h{level}>{html.escape(self.words(2, 6).title())}</h{level}>"

    def list_(self, depth: int = 0) -> str:
        r = self.r
        tag = "ol" if r.random() < 0.55 else "ul"
        items = []
        for _ in range(r.randint(2, 8)):
            if r.random() < 0.6:
                body = f"{html.escape(self.words(1, 3).title())}: {self.inline(1, 2)}"
            else:
                body = self.inline(1, 2)
            if r.random() < 0.15:
                body = f"<p>{body}</p>"
            if depth == 0 and r.random() < 0.12:
                body += self.list_(depth + 1)
            items.append(f"<li>{body}</li>")
        return f"<{tag}>{''.join(items)}</{tag}>"

    def table(self) -> str:
        r = self.r
        cols = r.randint(2, 5)
        head = "".join(f"<th>{html.escape(self.words(1, 2).title())}</th>" for _ in range(cols))
        rows = []
        for _ in range(r.randint(2, 8)):
            cells = []
            for _ in range(cols):
                cell = (
                    str(r.randint(0, 9999)) if r.random() < 0.3 else html.escape(self.words(1, 4))
                )
                cells.append(f"<td>{cell}</td>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def blockquote(self) -> str:
        return f"<blockquote><p>{self.inline(1, 3)}</p></blockquote>"

    # -- code ----------------------------------------------------------------------------

    def _ident(self) -> str:
        r = self.r
        return "_".join(r.choice(_NAMES) for _ in range(r.randint(1, 2)))

    def code_line(self, lang: str, indent: int) -> str:
        """One highlighted code line (already HTML: hljs spans around escaped text)."""
        r = self.r
        pad = "    " * indent
        a, b = self._ident(), self._ident()
        kw = lambda w: f'<span class="hljs-keyword">{w}</span>'
        num = f'<span class="hljs-number">{r.randint(0, 4096)}</span>'
        string = f'<span class="hljs-string">"{html.escape(self.words(1, 4), quote=False)}"</span>'
        roll = r.random()
        if roll < 0.12:
            mark = "#" if lang in ("python", "bash") else "--" if lang == "sql" else "//"
            return f'{pad}<span class="hljs-comment">{mark} {html.escape(self.words(3, 10))}</span>'
        if lang == "python":
            choices = (
                f"{pad}{a} = {b}({num}, {string})",
                f"{pad}{kw('for')} {a} {kw('in')} {b}:",
                f"{pad}{kw('if')} {a} &gt; {num}:",
                f"{pad}{kw('return')} {a} + {b}",
                (
                    f'{pad}{kw("def")} <span class="hljs-title function_">{a}</span>'
                    f'(<span class="hljs-params">{b}, {self._ident()}</span>):'
                ),
                f'{pad}<span class="hljs-built_in">print</span>({string}, {a})',
            )
        elif lang == "sql":
            choices = (
                f"{pad}{kw('SELECT')} {a}, {b} {kw('FROM')} {self._ident()}",
                f"{pad}{kw('WHERE')} {a} &gt; {num} {kw('AND')} {b} = {string}",
                f"{pad}{kw('ORDER BY')} {a} {kw('DESC')};",
            )
        elif lang == "bash":
            choices = (
                f"{pad}{a}={string}",
                f'{pad}<span class="hljs-built_in">echo</span> {string}',
                f"{pad}{kw('if')} [ -f {a} ]; {kw('then')} {b} --{self._ident()}; {kw('fi')}",
            )
        else:  # a C-like language stands in for the rest
            choices = (
                f"{pad}{kw('const')} {a} = {b}({num}, {string});",
                f"{pad}{kw('if')} ({a} &lt; {num}) {{",
                f"{pad}{kw('return')} {a} + {b};",
                f"{pad}}}",
                f'{pad}<span class="hljs-title function_">{a}</span>({b}, {string});',
            )
        return r.choice(choices)

    def code_block(self, long: bool = False) -> str:
        r = self.r
        lang = r.choice(_LANGS)
        n = r.randint(20, 90) if long else r.randint(3, 25)
        lines, indent = [], 0
        for _ in range(n):
            if r.random() < 0.08:
                lines.append("")
                continue
            line = self.code_line(lang, indent)
            lines.append(line)
            if line.endswith((":", "{")):
                indent = min(indent + 1, 4)
            elif indent and r.random() < 0.3:
                indent -= 1
        code = "\n".join(lines) + "\n"
        if r.random() < 0.75:  # the newer page: label span, button with icon
            header = (
                f'{_HEADER}<span class="">{lang}</span><button class="flex ml-auto gap-2">'
                f"{_COPY_ICON}Copy code</button></div>"
            )
            body = '<div class="p-4 overflow-y-auto">'
            outer = '<div class="bg-black mb-4 rounded-md">'
        else:  # the older page: bare label, icon and "Copy code" text, no button
            header = f"{_HEADER}<span>{lang}</span>{_COPY_ICON}Copy code</div>"
            body = "<div>"
            outer = '<div class="bg-black rounded-md mb-4">'
        return (
            f"<pre>{outer}{header}{body}"
            f'<code class="!whitespace-pre hljs language-{lang}">{code}</code></div></div></pre>'
        )

    # -- math ----------------------------------------------------------------------------

    def katex(self, display: bool) -> str:
        """KaTeX as the page rendered it: MathML with the TeX annotation, then the HTML boxes."""
        r = self.r
        a, b, c = (r.choice("abcnxyzkt") for _ in range(3))
        forms = (
            (
                f"{a}^2 + {b}^2 = {c}^2",
                (
                    f"<msup><mi>{a}</mi><mn>2</mn></msup><mo>+</mo>"
                    f"<msup><mi>{b}</mi><mn>2</mn></msup><mo>=</mo>"
                    f"<msup><mi>{c}</mi><mn>2</mn></msup>"
                ),
            ),
            (f"\\frac{{{a}}}{{{b}}}", f"<mfrac><mi>{a}</mi><mi>{b}</mi></mfrac>"),
            (
                f"\\sum_{{{a}=1}}^{{n}} {b}_{a}",
                (
                    f"<munderover><mo>∑</mo><mrow><mi>{a}</mi><mo>=</mo>"
                    f"<mn>1</mn></mrow><mi>n</mi></munderover><msub><mi>{b}</mi><mi>{a}</mi></msub>"
                ),
            ),
            (
                f"O({a} \\log {a})",
                f"<mi>O</mi><mo>(</mo><mi>{a}</mi><mi>log</mi><mi>{a}</mi><mo>)</mo>",
            ),
        )
        tex, mathml = r.choice(forms)
        # The HTML rendering: one box per rendered symbol (commands such as \\frac draw none).
        boxes = "".join(
            f'<span class="mord mathnormal">{html.escape(ch)}</span>'
            for ch in re.sub(r"\\[a-z]+", "", tex)
            if ch.isalnum()
        )
        block = ' display="block"' if display else ""
        katex = (
            '<span class="katex"><span class="katex-mathml">'
            f'<math xmlns="http://www.w3.org/1998/Math/MathML"{block}><semantics>'
            f"<mrow>{mathml}</mrow>"
            f'<annotation encoding="application/x-tex">{html.escape(tex, quote=False)}</annotation>'
            '</semantics></math></span><span class="katex-html" aria-hidden="true">'
            '<span class="base">'
            f'<span class="strut" style="height:{r.randint(60, 140) / 100}em;"></span>{boxes}'
            "</span></span></span>"
        )
        if display:
            return (
                f'<span class="math math-display"><span class="katex-display">{katex}</span></span>'
            )
        return f'<span class="math math-inline">{katex}</span>'


def gpt_turn(rng: random.Random) -> str:
    """One assistant answer in page HTML (about 3-4 KB on average, long-tailed)."""
    t = _Text(rng)
    r = rng
    blocks = [t.paragraph()]
    n = r.choices((1, 2, 3, 4, 6, 9, 14), weights=(14, 20, 22, 19, 14, 8, 3))[0]
    for _ in range(n):
        roll = r.random()
        if roll < 0.30:
            blocks.append(t.paragraph())
        elif roll < 0.52:
            blocks.append(t.list_())
        elif roll < 0.72:
            blocks.append(t.code_block(long=r.random() < 0.15))
            if r.random() < 0.5:
                blocks.append(t.paragraph())
        elif roll < 0.80:
            blocks.append(t.heading())
        elif roll < 0.87:
            blocks.append(t.table())
        elif roll < 0.93:
            blocks.append(f"<p>{t.inline(1, 2)}</p><p>{t.katex(display=True)}</p>")
        else:
            blocks.append(t.blockquote())
    return r.choice(WRAPPERS) + "".join(blocks) + "</div>"


def _human_turn(rng: random.Random) -> str:
    t = _Text(rng)
    roll = rng.random()
    if roll < 0.55:
        text = t.plain(1, 3)
    elif roll < 0.80:
        text = t.plain(2, 8) + "\n\n" + t.plain(1, 4)
    elif roll < 0.92:  # code pasted as text
        lines = [
            t.words(2, 8).replace(" ", "_") + "(" + t.words(1, 3) + ")"
            for _ in range(rng.randint(2, 12))
        ]
        text = t.plain(1, 2) + "\n\n" + "\n".join(lines)
    else:
        text = rng.choice(("continue", "Continue", "go on", "more", "thanks!", "Please continue"))
    if rng.random() < 0.03:
        text = f"{rng.randint(2, 3)} / {rng.randint(3, 4)}" + text  # the page's edit counter
    return text


_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _rng(seed: int, index: int) -> random.Random:
    return random.Random(seed * 1_000_003 + index)


def record(index: int, seed: int = 0) -> dict[str, Any]:
    """Record ``index`` of the stream of ``seed``: a ShareGPT conversation in page HTML."""
    r = _rng(seed, index)
    cid = "".join(r.choice(_ID_CHARS) for _ in range(7))
    if index and r.random() < 0.01:  # an exact duplicate of an earlier record, under a new id
        dup = record(r.randrange(index), seed)
        dup["id"] = cid
        return dup
    # Exchanges: most conversations are short, some run long enough to need splitting.
    n = r.choices((1, 2, 3, 4, 5, 7, 10, 15, 24, 40), weights=(35, 16, 12, 10, 8, 7, 6, 3, 2, 1))[0]
    convs: list[dict[str, str]] = []
    for _ in range(n):
        convs.append({"from": "human", "value": _human_turn(r)})
        convs.append({"from": "gpt", "value": gpt_turn(r)})
    roll = r.random()
    if roll < 0.04:
        convs.append({"from": "human", "value": _human_turn(r)})  # unanswered last question
    elif roll < 0.06:
        convs.insert(0, {"from": "gpt", "value": gpt_turn(r)})  # starts with the model
    elif roll < 0.07:
        convs[r.randrange(1, len(convs), 2)]["value"] = ""  # an empty answer
    elif roll < 0.08:
        convs[-1]["value"] = f"{WRAPPERS[0]}<p>{RATE_LIMIT}</p></div>"
    elif roll < 0.09:
        at = r.randrange(1, len(convs), 2)  # an answer naming the vendor
        convs[at]["value"] = convs[at]["value"].replace("<p>", "<p>As OpenAI says, ", 1)
    return {"id": cid, "conversations": convs}


def records(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """The first ``n`` records of the stream of ``seed``."""
    for i in range(n):
        yield record(i, seed)


def gpt_turns(n: int, seed: int = 0) -> list[str]:
    """``n`` assistant answers in page HTML: a fixed input for the markdown benchmarks."""
    return [gpt_turn(_rng(seed + 7919, i)) for i in range(n)]


def write_json(path: str | os.PathLike[str], n: int, seed: int = 0) -> Path:
    """Write ``n`` records as one JSON array (the form of a ShareGPT dump); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for i, rec in enumerate(records(n, seed)):
            if i:
                f.write(",\n")
            json.dump(rec, f, ensure_ascii=False)
        f.write("]\n")
    return path


# ------------------------------------------------------------------ real data, when present


def shared_data() -> Path | None:
    """``$CONVKIT_SHARED_DATA``, else ``shared/data`` beside the repository, if it exists."""
    env = os.environ.get("CONVKIT_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "SOURCES.md").is_file():
            return c
    return None


def rendered_corpus() -> Path | None:
    """The 3,000 real ShareGPT conversations re-rendered into page HTML, if present."""
    data = shared_data()
    if data is None:
        return None
    path = data / "sharegpt_html" / "rendered" / "sharegpt_v3_rendered_3000.json"
    return path if path.is_file() else None


def load_rendered(limit: int | None = None) -> list[dict[str, Any]] | None:
    """The rendered corpus as ShareGPT records (``value`` only, the gold ``markdown`` removed),
    the first ``limit`` of them; None when the shared data is absent."""
    path = rendered_corpus()
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    out = []
    for rec in data[:limit]:
        convs = [{"from": c["from"], "value": c["value"]} for c in rec["conversations"]]
        out.append(
            {**{k: v for k, v in rec.items() if k != "conversations"}, "conversations": convs}
        )
    return out


def default_tokenizer() -> Path:
    """The llama tokenizer of the shared data when present, else the small one in examples/."""
    data = shared_data()
    if data is not None:
        llama = data / "tokenizers" / "llama" / "tokenizer.json"
        if llama.is_file():
            return llama
    return REPO / "examples" / "tokenizer.json"


def cpu_model() -> str:
    """The processor's name, for the machine line of the benchmark reports."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"
