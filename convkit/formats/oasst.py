"""Open Assistant (OASST1/OASST2) message trees, in any of their three layouts.

``tree``
    The tree export: ``{"message_tree_id", "tree_state", "prompt": <message>}``, each message
    ``{message_id, role: "prompter"|"assistant", text, deleted, rank, replies: [...], ...}``.
``nested``
    A root message with its ``replies`` nested the same way (``parent_id`` null).
``rows``
    Flat rows, one message per record (the Hugging Face ``oasst1`` layout): ``message_id``,
    ``parent_id``, ``role``, ``text``, ``deleted``, ``rank``, ``message_tree_id``.

Every root-to-leaf path of messages that are not deleted gives one conversation. A deleted
message is skipped with its whole subtree, and a message whose replies are all deleted is itself
a leaf (an earlier converter lost those). A path whose leaf is a prompter message is cut after its
last assistant message, and a path end is emitted once, so two unanswered follow-ups of the same
answer give one conversation; none when another conversation goes on from that answer (the cut
path would be its prefix: the same exchanges twice). A tree with no assistant answer at all is rejected
(``no_assistant_reply``), a deleted root too (``deleted_prompt``).

Option ``best``: keep only the best-ranked reply at each step (lowest ``rank``; unranked replies
after ranked ones, then input order), so each tree gives one path. Conversation ids are
``{message_tree_id}/{message_id of the last message}``: the last message fixes the path. Each turn
keeps its ``message_id`` in ``Turn.meta``; ``meta`` holds ``message_tree_id``, the root's ``lang``
and, for tree exports, ``tree_state``; ``meta["convkit"]`` the ``layout`` and ``best``.

Flat rows span many records, so this reader keeps state across records (``read_stream``):

* ``row_order="grouped"`` (default): the rows of a tree are adjacent, as in the published files.
  A tree is complete when a row of another tree arrives (by ``message_tree_id``; without it,
  when the next root row arrives), and is then turned into conversations and forgotten. Memory:
  the largest tree, plus the ids of the trees already done (to reject, as
  ``tree_not_contiguous``, a row that comes back to one of them).
* ``row_order="any"``: rows in any order; everything is held until the end of the input.
  Memory: the whole input.

Rows whose parent is not among their tree's rows are rejected (``orphan_message``), with every
message below them; a repeated ``message_id`` is rejected (``duplicate_message_id``). Each row is
a record, so a row that no conversation holds is rejected too, after its tree's conversations:
``deleted_message`` (deleted, or below a deleted message), ``unanswered_message`` (a prompter
message no answer follows), ``not_best_reply`` (with ``best``), and ``orphan_message`` below a
root that is rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from ..model import ASSISTANT, USER, Conversation, Source, Turn
from ._common import expect, with_provenance
from .base import Format, Option, RecordRejected, Rejection, register
from .sharegpt import require_object

ROLES = {"prompter": USER, "assistant": ASSISTANT}


def _is_row(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("message_id"), str)
        and "parent_id" in record
        and "role" in record
        and "text" in record
        and not isinstance(record.get("replies"), list)
    )


def _layout(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("prompt"), dict) and (
        "message_tree_id" in record or "replies" in record["prompt"]
    ):
        return "tree"
    if isinstance(record.get("message_id"), str) and isinstance(record.get("replies"), list):
        return "nested"
    if _is_row(record):
        return "rows"
    return None


_WHY = {
    "tree": '"prompt" message with nested "replies" (OASST tree export)',
    "nested": '"message_id" with nested "replies" (OASST message tree)',
    "rows": '"message_id", "parent_id", "role" and "text" (one OASST message per record)',
}


@register
class Oasst(Format):
    name = "oasst"
    reasons: ClassVar[dict[str, str]] = {
        "tree_not_contiguous": "a flat OASST row comes back to a message tree after rows of "
        "another one (read with row_order='any')",
        "deleted_prompt": "the root message of an OASST tree is deleted",
        "orphan_message": "an OASST message whose parent is missing or cut off (with the "
        "messages below it)",
        "duplicate_message_id": "an OASST message_id seen before in the same input",
        "deleted_message": "a flat OASST row marked deleted, or below one",
        "unanswered_message": "a flat OASST row of the prompter that no assistant message "
        "answers (paths are cut back after their last answer)",
        "not_best_reply": "a flat OASST row that is not the best-ranked reply (oasst option "
        "best), or below one",
    }
    aliases = ("oasst1", "oasst2", "open-assistant")
    description = "Open Assistant message trees: tree export, nested messages or flat rows"
    recognises = (
        '"prompt" with nested "replies" (tree export), "message_id" with "replies" (nested), '
        'or "message_id", "parent_id", "role", "text" (flat rows)'
    )
    detect_priority = 10
    stateful = True
    options = (
        Option(
            "best", bool, False, "keep only the best-ranked reply at each step",
            flags=("oasst-best",),
        ),
        Option(
            "row_order",
            str,
            "grouped",
            "flat rows: 'grouped' (a tree's rows adjacent; memory of one tree) "
            "or 'any' (held until the end of input)",
            choices=("grouped", "any"),
        ),
    )

    def recognise(self, record: Any) -> str | None:
        layout = _layout(record)
        return None if layout is None else _WHY[layout]

    # ------------------------------------------------------------------ one record

    def read(self, record: Any, source: Source) -> Iterator[Conversation | Rejection]:
        record = require_object(record)
        layout = _layout(record)
        if layout == "tree":
            root = record["prompt"]
            tree_id = record.get("message_tree_id") or root.get("message_id")
            extra = {"tree_state": record["tree_state"]} if "tree_state" in record else {}
            yield from self._walk(root, _str_id(tree_id, "message_tree_id"), "tree", source, extra)
        elif layout == "nested":
            tree_id = record.get("message_tree_id") or record["message_id"]
            yield from self._walk(record, _str_id(tree_id, "message_tree_id"), "nested", source, {})
        elif layout == "rows":
            raise RecordRejected(
                "invalid_record",
                "a flat OASST row holds one message; rows are read together by read_stream",
            )
        else:
            raise RecordRejected(
                "invalid_record",
                'expected an OASST tree ("prompt"), a message with "replies", or a flat row',
            )

    # ------------------------------------------------------------------ a stream of records

    def read_stream(self, records: Iterable[Any]) -> Iterator[Any]:
        grouped = self.opt["row_order"] == "grouped"
        group: list[tuple[dict[str, Any], Source]] = []
        key: str | None = None
        done: set[str] = set()
        for rec in records:
            value = getattr(rec, "value", _MISSING)
            if value is _MISSING:
                yield rec  # a BadRecord: passed through in place
                continue
            source = Source(rec.file, rec.index, rec.line)
            if not _is_row(value):
                try:
                    yield from self.read(value, source)
                except RecordRejected as e:
                    yield Rejection.of(e, source, value)
                continue
            try:
                row = _check_row(value)
            except RecordRejected as e:
                yield Rejection.of(e, source, value)
                continue
            if grouped:
                tid = row.get("message_tree_id")
                new_key = (
                    tid
                    if isinstance(tid, str) and tid
                    else (row["message_id"] if row["parent_id"] is None else key)
                )
                if new_key != key:
                    if group:
                        yield from self._flush(group)
                        if key is not None:
                            done.add(key)
                    group = []
                    key = new_key
                if key is not None and key in done:
                    yield Rejection(
                        "tree_not_contiguous",
                        f"row of message {row['message_id']!r} comes back to tree {key!r} after "
                        "rows of another tree; read with the oasst option row_order='any'",
                        source,
                        "message_tree_id",
                        raw=value,
                    )
                    continue
            group.append((row, source))
        if group:
            yield from self._flush(group)

    def _flush(
        self, group: list[tuple[dict[str, Any], Source]]
    ) -> Iterator[Conversation | Rejection]:
        """Turn the rows of one tree (or of many, with ``row_order='any'``) into conversations."""
        nodes: dict[str, dict[str, Any]] = {}
        where: dict[str, Source] = {}
        for row, source in group:
            mid = row["message_id"]
            if mid in nodes:
                yield Rejection(
                    "duplicate_message_id",
                    f"message id {mid!r} appears twice",
                    source,
                    "message_id",
                    raw=row,
                )
                continue
            nodes[mid] = {**row, "replies": []}
            where[mid] = source
        roots = []
        for mid, node in nodes.items():
            pid = node["parent_id"]
            if pid is None:
                roots.append(node)
            elif pid in nodes and pid != mid:
                nodes[pid]["replies"].append(node)
        reachable: set[str] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            reachable.add(n["message_id"])
            stack.extend(n["replies"])
        for mid, node in nodes.items():
            if mid not in reachable:
                yield Rejection(
                    "orphan_message",
                    f"message {mid!r} does not lead to a root message "
                    f"(its parent {node['parent_id']!r} is missing or cut off)",
                    where[mid],
                    "parent_id",
                    raw={k: v for k, v in node.items() if k != "replies"},
                )
        for root in roots:
            tid = root.get("message_tree_id")
            tree_id = tid if isinstance(tid, str) and tid else root["message_id"]
            made = list(self._walk(root, tree_id, "rows", where[root["message_id"]], {}))
            yield from made
            held = {
                t.meta["message_id"]
                for c in made
                if isinstance(c, Conversation)
                for t in c.turns
                if t.meta is not None
            }
            refused = next((r.reason for r in made if isinstance(r, Rejection)), None)
            yield from self._unheld(root, held, refused, where)

    def _unheld(
        self,
        root: dict[str, Any],
        held: set[str],
        refused: str | None,
        where: dict[str, Source],
    ) -> Iterator[Rejection]:
        """A rejection for each row of a tree that no conversation holds: each row is a record,
        and every record is in the output or in the rejects. ``refused`` is the reason the
        tree's root was rejected for, if it was (that rejection is the root row's)."""
        best = self.opt["best"]
        # (node, its own reason and message or None, what its replies are below or None)
        stack: list[tuple[dict[str, Any], tuple[str, str] | None, tuple[str, str] | None]] = [
            (root, None, None)
        ]
        while stack:
            node, own, below = stack.pop()
            mid = node["message_id"]
            deleted = bool(node.get("deleted"))
            if own is None:
                if below is not None:
                    own = (below[0], f"message {mid!r} is below {below[1]}")
                elif deleted:
                    own = ("deleted_message", f"message {mid!r} is deleted")
                else:
                    own = ("unanswered_message", f"no assistant message answers message {mid!r}")
            if below is None:
                if deleted:
                    below = ("deleted_message", f"deleted message {mid!r}")
                elif own[0] == "not_best_reply":
                    why = f"which is not the best-ranked reply to message {node['parent_id']!r}"
                    below = ("not_best_reply", f"message {mid!r}, {why}")
                elif node is root and refused not in (None, "no_assistant_reply"):
                    below = ("orphan_message", f"root message {mid!r}, which is rejected")
            # A rejected root's row has its tree's rejection.
            if mid not in held and (node is not root or refused is None):
                yield Rejection(own[0], own[1], where[mid], None, raw=_strip(node))
            replies = node["replies"]
            chosen = None
            if best and below is None:
                live = [(c, "") for c in replies if not c.get("deleted")]
                chosen = _best(live)[0] if live else None
            for child in reversed(replies):
                child_own = None
                if chosen is not None and child is not chosen and not child.get("deleted"):
                    why = f"is not the best-ranked reply to message {mid!r}"
                    child_own = ("not_best_reply", f"message {child['message_id']!r} {why}")
                stack.append((child, child_own, below))

    # ------------------------------------------------------------------ the walk

    def _walk(
        self,
        root: Any,
        tree_id: str,
        layout: str,
        source: Source,
        extra_meta: dict[str, Any],
    ) -> Iterator[Conversation | Rejection]:
        try:
            _check_node(root, "prompt" if layout == "tree" else None)
        except RecordRejected as e:
            yield Rejection.of(e, source, root, tree_id)
            return
        if root.get("deleted"):
            yield Rejection(
                "deleted_prompt",
                f"the root message of tree {tree_id!r} is deleted",
                source,
                id=tree_id,
                raw=_strip(root),
            )
            return
        if root["role"] != "prompter":
            yield Rejection(
                "invalid_record",
                f"expected the root message of tree {tree_id!r} to be from the prompter, "
                f"got {root['role']!r}",
                source,
                "role",
                tree_id,
                _strip(root),
            )
            return
        best = self.opt["best"]
        out: list[tuple[Conversation, bool]] = []  # with whether the path was cut back
        seen_ends: set[str] = set()
        # Depth-first, children in input order; a path is the list of messages from the root.
        stack: list[tuple[dict[str, Any], list[dict[str, Any]], str | None]] = [
            (root, [root], "prompt" if layout == "tree" else None)
        ]
        try:
            while stack:
                node, path, at = stack.pop()
                replies = node.get("replies") or []
                here = "replies" if at is None else f"{at}.replies"
                if not isinstance(replies, list):
                    raise expect(replies, "a list", here)
                live = []
                for i, child in enumerate(replies):
                    _check_node(child, f"{here}[{i}]")
                    if not child.get("deleted"):
                        live.append((child, f"{here}[{i}]"))
                if best and live:
                    live = [_best(live)]
                if not live:
                    conv = self._path(path, tree_id, layout, source, extra_meta, seen_ends)
                    if conv is not None:
                        out.append((conv, path[-1]["role"] != "assistant"))
                    continue
                for child, child_at in reversed(live):
                    stack.append((child, [*path, child], child_at))
        except RecordRejected as e:
            yield Rejection.of(e, source, _strip(root), tree_id)
            return
        if not out:
            yield Rejection(
                "no_assistant_reply",
                f"tree {tree_id!r} has no assistant reply that is not deleted",
                source,
                id=tree_id,
                raw=_strip(root),
            )
            return
        # A cut-back path whose last answer another conversation goes on from is that one's
        # prefix: the same exchanges twice. It is kept only where nothing else holds them.
        inner = {t.meta["message_id"] for conv, _ in out for t in conv.turns[:-1]}
        yield from (
            conv for conv, cut in out if not cut or conv.turns[-1].meta["message_id"] not in inner
        )

    def _path(
        self,
        path: list[dict[str, Any]],
        tree_id: str,
        layout: str,
        source: Source,
        extra_meta: dict[str, Any],
        seen_ends: set[str],
    ) -> Conversation | None:
        end = len(path)
        while end and path[end - 1]["role"] != "assistant":
            end -= 1  # a path ending with the prompter is cut after its last answer
        if end == 0:
            return None
        last = path[end - 1]["message_id"]
        if last in seen_ends:
            return None
        seen_ends.add(last)
        turns = [
            Turn(ROLES[m["role"]], m["text"], {"message_id": m["message_id"]}) for m in path[:end]
        ]
        meta: dict[str, Any] = {"message_tree_id": tree_id}
        lang = path[0].get("lang")
        if lang:
            meta["lang"] = lang
        meta.update(extra_meta)
        with_provenance(meta, self.name, layout=layout, best=True if self.opt["best"] else None)
        raw = [_strip(m) for m in path[:end]]
        return Conversation(f"{tree_id}/{last}", turns, meta, source, raw)


_MISSING = object()


def _str_id(value: Any, key: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise expect(value, "a string", key)


def _check_node(node: Any, at: str | None) -> None:
    """Reject a message of the wrong shape, naming where in the tree it is (None: the record)."""

    def path(key: str) -> str:
        return key if at is None else f"{at}.{key}"

    if not isinstance(node, dict):
        raise expect(node, "an object", at or "record")
    if not isinstance(node.get("message_id"), str):
        raise expect(node.get("message_id"), "a string", path("message_id"))
    role = node.get("role")
    if not isinstance(role, str):
        raise expect(role, "a string", path("role"))
    if role not in ROLES:
        raise RecordRejected(
            "unknown_role", f"unknown role {role!r} in {path('role')}", path("role")
        )
    if not isinstance(node.get("text"), str):
        raise expect(node.get("text"), "a string", path("text"))
    deleted = node.get("deleted")
    if deleted is not None and not isinstance(deleted, bool):
        raise expect(deleted, "a boolean", path("deleted"))
    rank = node.get("rank")
    if rank is not None and (not isinstance(rank, (int, float)) or isinstance(rank, bool)):
        raise expect(rank, "a number", path("rank"))


def _check_row(row: dict[str, Any]) -> dict[str, Any]:
    _check_node(row, None)
    pid = row.get("parent_id")
    if pid is not None and not isinstance(pid, str):
        raise expect(pid, "a string or null", "parent_id")
    return row


def _best(live: list[tuple[dict[str, Any], str]]) -> tuple[dict[str, Any], str]:
    """The best-ranked reply: lowest rank first, unranked after ranked, then input order."""

    def key(item: tuple[int, tuple[dict[str, Any], str]]) -> tuple[bool, float, int]:
        i, (child, _) = item
        rank = child.get("rank")
        return (rank is None, rank if rank is not None else 0, i)

    return min(enumerate(live), key=key)[1]


def _strip(node: dict[str, Any]) -> dict[str, Any]:
    """A message without its replies, for the rejects file and ``Conversation.raw``."""
    return {k: v for k, v in node.items() if k != "replies"}
