"""OASST: tree export, nested messages and flat rows; paths, deleted messages, best-ranked."""

from __future__ import annotations

import json
import random

import pytest

from convkit.formats import Rejection, get_format
from convkit.io import RawRecord, read_records
from convkit.model import Conversation, Source


def msg(mid, role, text=None, replies=(), rank=None, deleted=False, **extra):
    return {
        "message_id": mid,
        "role": role,
        "text": text or f"text of {mid}",
        "rank": rank,
        "deleted": deleted,
        "lang": "en",
        "replies": list(replies),
        **extra,
    }


# P0 ── A1 (rank 1) ── P2                     : cut after A1
#     │              └─ P3 ── A4 (deleted)    : P3 is a leaf; cut after A1 again (emitted once)
#     ├─ A5 (rank 0) ── P6 ── A7 (rank 0)
#     │                     └─ A8 (rank 1)
#     ├─ A9 (deleted) ── P10                  : skipped with its subtree
#     └─ A11 (no rank)
TREE = msg(
    "P0",
    "prompter",
    replies=[
        msg(
            "A1",
            "assistant",
            rank=1,
            replies=[
                msg("P2", "prompter"),
                msg("P3", "prompter", replies=[msg("A4", "assistant", deleted=True)]),
            ],
        ),
        msg(
            "A5",
            "assistant",
            rank=0,
            replies=[
                msg(
                    "P6",
                    "prompter",
                    replies=[msg("A7", "assistant", rank=0), msg("A8", "assistant", rank=1)],
                ),
            ],
        ),
        msg("A9", "assistant", deleted=True, replies=[msg("P10", "prompter")]),
        msg("A11", "assistant"),
    ],
)
EXPORT = {"message_tree_id": "T", "tree_state": "ready_for_export", "prompt": TREE}
SRC = Source("trees.jsonl", 0, 1)


def read(record, **options):
    return list(get_format("oasst", **options).read(record, SRC))


def paths(items):
    return [[t.meta["message_id"] for t in c.turns] for c in items]


def test_tree_export_one_conversation_per_path():
    out = read(EXPORT)
    assert [c.id for c in out] == ["T/A1", "T/A7", "T/A8", "T/A11"]
    assert paths(out) == [
        ["P0", "A1"],
        ["P0", "A5", "P6", "A7"],
        ["P0", "A5", "P6", "A8"],
        ["P0", "A11"],
    ]
    assert out[1].roles() == ["user", "assistant", "user", "assistant"]
    assert out[1].turns[3].content == "text of A7"
    assert out[0].meta == {
        "message_tree_id": "T",
        "lang": "en",
        "tree_state": "ready_for_export",
        "convkit": {"reader": "oasst", "layout": "tree"},
    }
    assert out[0].source == SRC


def test_a_cut_path_that_is_a_prefix_of_another_is_not_emitted():
    # A1 has an unanswered follow-up (P2) and an answered one (P3 -> A4): P0 A1 is already the
    # start of P0 A1 P3 A4.
    tree = msg("P0", "prompter", replies=[msg("A1", "assistant", replies=[
        msg("P2", "prompter"), msg("P3", "prompter", replies=[msg("A4", "assistant")])])])
    out = read({"message_tree_id": "T", "prompt": tree})
    assert paths(out) == [["P0", "A1", "P3", "A4"]]
    # Only unanswered follow-ups: the cut path is the only one holding P0 A1.
    tree = msg("P0", "prompter", replies=[msg("A1", "assistant", replies=[msg("P2", "prompter")]),
                                          msg("A3", "assistant")])
    assert paths(read({"message_tree_id": "T", "prompt": tree})) == [["P0", "A1"], ["P0", "A3"]]
    # Two cut paths, one going on from the other's last answer.
    tree = msg("P0", "prompter", replies=[msg("A1", "assistant", replies=[
        msg("P2", "prompter", replies=[msg("A3", "assistant", replies=[msg("P4", "prompter")])]),
        msg("P5", "prompter")])])
    assert paths(read({"message_tree_id": "T", "prompt": tree})) == [["P0", "A1", "P2", "A3"]]


def test_best_keeps_the_best_ranked_reply_at_each_step():
    out = read(EXPORT, best=True)
    assert paths(out) == [["P0", "A5", "P6", "A7"]]
    assert out[0].meta["convkit"] == {"reader": "oasst", "layout": "tree", "best": True}


def test_unranked_replies_come_after_ranked_ones_then_input_order():
    tree = msg(
        "P",
        "prompter",
        replies=[msg("A", "assistant"), msg("B", "assistant", rank=2), msg("C", "assistant")],
    )
    assert paths(read({"message_tree_id": "T", "prompt": tree}, best=True)) == [["P", "B"]]
    tree = msg("P", "prompter", replies=[msg("A", "assistant"), msg("C", "assistant")])
    assert paths(read({"message_tree_id": "T", "prompt": tree}, best=True)) == [["P", "A"]]


def test_a_node_whose_replies_are_all_deleted_is_a_leaf():
    tree = msg(
        "P",
        "prompter",
        replies=[
            msg(
                "A",
                "assistant",
                replies=[msg("Q", "prompter", deleted=True), msg("R", "prompter", deleted=True)],
            )
        ],
    )
    assert paths(read({"message_tree_id": "T", "prompt": tree})) == [["P", "A"]]


def test_nested_message_layout():
    out = read({**TREE, "parent_id": None})
    assert [c.id for c in out] == ["P0/A1", "P0/A7", "P0/A8", "P0/A11"]
    assert out[0].meta["convkit"]["layout"] == "nested"


def test_tree_without_answers_and_deleted_root_are_rejected_with_reasons():
    (r,) = read(
        {
            "message_tree_id": "T",
            "prompt": msg("P", "prompter", replies=[msg("A", "assistant", deleted=True)]),
        }
    )
    assert (r.reason, r.message, r.id) == (
        "no_assistant_reply",
        "tree 'T' has no assistant reply that is not deleted",
        "T",
    )
    (r,) = read(
        {
            "message_tree_id": "T",
            "prompt": msg("P", "prompter", deleted=True, replies=[msg("A", "assistant")]),
        }
    )
    assert (r.reason, r.message) == ("deleted_prompt", "the root message of tree 'T' is deleted")
    (r,) = read({"message_tree_id": "T", "prompt": msg("A", "assistant")})
    assert (r.reason, r.message) == (
        "invalid_record",
        "expected the root message of tree 'T' to be from the prompter, got 'assistant'",
    )


@pytest.mark.parametrize(
    "bad,reason,message",
    [
        (
            {"text": 3},
            "invalid_record",
            "expected prompt.replies[0].text to be a string, got number",
        ),
        ({"role": "bot"}, "unknown_role", "unknown role 'bot' in prompt.replies[0].role"),
        (
            {"deleted": "no"},
            "invalid_record",
            "expected prompt.replies[0].deleted to be a boolean, got string",
        ),
        (
            {"replies": "x"},
            "invalid_record",
            "expected prompt.replies[0].replies to be a list, got string",
        ),
    ],
)
def test_malformed_message_rejects_the_tree_with_where(bad, reason, message):
    tree = msg("P", "prompter", replies=[{**msg("A", "assistant"), **bad}])
    (r,) = read({"message_tree_id": "T", "prompt": tree})
    assert isinstance(r, Rejection)
    assert (r.reason, r.message, r.id) == (reason, message, "T")


# --------------------------------------------------------------------------- flat rows


def flatten(node, parent=None, tree=None):
    tree = tree or node["message_id"]
    row = {k: v for k, v in node.items() if k != "replies"}
    row["parent_id"] = parent
    row["message_tree_id"] = tree
    yield row
    for r in node.get("replies") or []:
        yield from flatten(r, node["message_id"], tree)


def rows_stream(rows, file="rows.jsonl"):
    return [RawRecord(file, i, i + 1, r) for i, r in enumerate(rows)]


def convs(items):
    return [x for x in items if isinstance(x, Conversation)]


def test_flat_rows_give_the_same_conversations_as_the_tree():
    rows = list(flatten(TREE, tree="T"))
    out = list(get_format("oasst").read_stream(rows_stream(rows)))
    assert [c.id for c in convs(out)] == ["T/A1", "T/A7", "T/A8", "T/A11"]
    assert out[0].meta["convkit"]["layout"] == "rows"
    assert out[0].source == Source("rows.jsonl", 0, 1)  # the root row


def _fates(out):
    return [
        (x.reason, x.message, x.source.index, x.raw["message_id"])
        if isinstance(x, Rejection)
        else x.id
        for x in out
    ]


def test_flat_rows_no_conversation_holds_are_rejected_each_with_its_reason():
    rows = list(flatten(TREE, tree="T"))
    index = {r["message_id"]: i for i, r in enumerate(rows)}
    out = list(get_format("oasst").read_stream(rows_stream(rows)))
    assert _fates(out) == [
        "T/A1",
        "T/A7",
        "T/A8",
        "T/A11",
        ("unanswered_message", "no assistant message answers message 'P2'", index["P2"], "P2"),
        ("unanswered_message", "no assistant message answers message 'P3'", index["P3"], "P3"),
        ("deleted_message", "message 'A4' is deleted", index["A4"], "A4"),
        ("deleted_message", "message 'A9' is deleted", index["A9"], "A9"),
        ("deleted_message", "message 'P10' is below deleted message 'A9'", index["P10"], "P10"),
    ]
    assert "replies" not in out[-1].raw


def test_flat_rows_best_rejects_the_other_replies():
    rows = list(flatten(TREE, tree="T"))
    out = list(get_format("oasst", best=True).read_stream(rows_stream(rows)))
    not_best = "which is not the best-ranked reply to message"
    assert [x[:2] if isinstance(x, tuple) else x for x in _fates(out)] == [
        "T/A7",
        ("not_best_reply", "message 'A1' is not the best-ranked reply to message 'P0'"),
        ("not_best_reply", f"message 'P2' is below message 'A1', {not_best} 'P0'"),
        ("not_best_reply", f"message 'P3' is below message 'A1', {not_best} 'P0'"),
        ("not_best_reply", f"message 'A4' is below message 'A1', {not_best} 'P0'"),
        ("not_best_reply", "message 'A8' is not the best-ranked reply to message 'P6'"),
        ("deleted_message", "message 'A9' is deleted"),
        ("deleted_message", "message 'P10' is below deleted message 'A9'"),
        ("not_best_reply", "message 'A11' is not the best-ranked reply to message 'P0'"),
    ]


def test_flat_rows_of_a_rejected_root_are_rejected_with_it():
    deleted = list(flatten(msg("P", "prompter", deleted=True, replies=[msg("A", "assistant")])))
    wrong = list(flatten(msg("Q", "assistant", replies=[msg("R", "prompter")])))
    unanswered = list(flatten(msg("S", "prompter", replies=[msg("T", "prompter")])))
    out = list(get_format("oasst").read_stream(rows_stream([*deleted, *wrong, *unanswered])))
    assert [x[:2] for x in _fates(out)] == [
        ("deleted_prompt", "the root message of tree 'P' is deleted"),
        ("deleted_message", "message 'A' is below deleted message 'P'"),
        ("invalid_record", "expected the root message of tree 'Q' to be from the prompter, got 'assistant'"),
        ("orphan_message", "message 'R' is below root message 'Q', which is rejected"),
        ("no_assistant_reply", "tree 'S' has no assistant reply that is not deleted"),
        ("unanswered_message", "no assistant message answers message 'T'"),
    ]


def test_flat_rows_of_several_trees_in_order_hold_one_tree_at_a_time():
    t2 = msg("Q0", "prompter", replies=[msg("B1", "assistant")])
    rows = [*flatten(TREE, tree="T"), *flatten(t2)]
    out = convs(get_format("oasst").read_stream(rows_stream(rows)))
    assert [c.id for c in out] == ["T/A1", "T/A7", "T/A8", "T/A11", "Q0/B1"]


def test_flat_rows_without_tree_ids_group_by_root_rows():
    t2 = msg("Q0", "prompter", replies=[msg("B1", "assistant")])
    rows = [*flatten(TREE), *flatten(t2)]
    for r in rows:
        del r["message_tree_id"]
    out = convs(get_format("oasst").read_stream(rows_stream(rows)))
    assert [c.id for c in out] == ["P0/A1", "P0/A7", "P0/A8", "P0/A11", "Q0/B1"]


def test_flat_rows_interleaved_need_row_order_any():
    t2 = list(flatten(msg("Q0", "prompter", replies=[msg("B1", "assistant")])))
    t1 = list(flatten(TREE, tree="T"))
    rows = [*t1[:3], *t2, *t1[3:]]
    out = list(get_format("oasst").read_stream(rows_stream(rows)))
    rejected = [r for r in out if isinstance(r, Rejection)]
    # P0, A1, P2 came first: P2 is unanswered in that part; the rest is not contiguous.
    assert {r.reason for r in rejected} == {"tree_not_contiguous", "unanswered_message"}
    assert [r.reason for r in rejected][:2] == ["unanswered_message", "tree_not_contiguous"]
    assert rejected[1].message == (
        "row of message 'P3' comes back to tree 'T' after rows of another tree; "
        "read with the oasst option row_order='any'"
    )
    out = convs(get_format("oasst", row_order="any").read_stream(rows_stream(rows)))
    assert sorted(c.id for c in out) == sorted(["T/A1", "T/A7", "T/A8", "T/A11", "Q0/B1"])


def test_flat_rows_any_order():
    rows = list(flatten(TREE, tree="T"))
    random.Random(3).shuffle(rows)
    out = convs(get_format("oasst", row_order="any").read_stream(rows_stream(rows)))
    assert sorted(paths(out)) == sorted(
        [["P0", "A1"], ["P0", "A5", "P6", "A7"], ["P0", "A5", "P6", "A8"], ["P0", "A11"]]
    )


def test_orphans_duplicates_and_bad_rows():
    rows = list(flatten(msg("P", "prompter", replies=[msg("A", "assistant")]), tree="T"))
    rows.append({**rows[1]})  # the same message again
    rows.append(
        {
            "message_id": "X",
            "parent_id": "gone",
            "role": "prompter",
            "text": "x",
            "message_tree_id": "T",
        }
    )
    rows.append(
        {
            "message_id": "Y",
            "parent_id": "X",
            "role": "assistant",
            "text": "y",
            "message_tree_id": "T",
        }
    )
    rows.append(
        {
            "message_id": "Z",
            "parent_id": "P",
            "role": "assistant",
            "text": 5,
            "message_tree_id": "T",
        }
    )
    out = list(get_format("oasst").read_stream(rows_stream(rows)))
    got = [(x.reason, x.message) if isinstance(x, Rejection) else x.id for x in out]
    assert got == [
        ("invalid_record", 'expected "text" to be a string, got number'),
        ("duplicate_message_id", "message id 'A' appears twice"),
        (
            "orphan_message",
            "message 'X' does not lead to a root message (its parent 'gone' is missing or cut off)",
        ),
        (
            "orphan_message",
            "message 'Y' does not lead to a root message (its parent 'X' is missing or cut off)",
        ),
        "T/A",
    ]


def test_a_single_flat_row_through_read_is_rejected():
    row = {"message_id": "m", "parent_id": None, "role": "prompter", "text": "q"}
    with pytest.raises(Exception) as e:
        read(row)
    assert e.value.reason == "invalid_record"


# --------------------------------------------------------------------------- real data


def _oracle(node, tree_id):
    """Path ends by the documented rule, computed recursively (the reader walks iteratively):
    each leaf's path cut after its last answer, once per end, and no path that is the prefix
    of another."""
    kept = []

    def walk(n, path):
        live = [c for c in n.get("replies") or [] if not c.get("deleted")]
        if not live:
            k = len(path)
            while k and path[k - 1]["role"] != "assistant":
                k -= 1
            ids = [m["message_id"] for m in path[:k]]
            if ids and ids not in kept:
                kept.append(ids)
            return
        for c in live:
            walk(c, [*path, c])

    if not node.get("deleted"):
        walk(node, [node])
    longer = [a for a in kept if not any(len(b) > len(a) and b[: len(a)] == a for b in kept)]
    return [f"{tree_id}/{ids[-1]}" for ids in longer]


def test_real_tree_export_matches_the_oracle(shared_data):
    path = shared_data / "formats" / "oasst1" / "en_100_tree.jsonl"
    trees = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    want = [i for t in trees for i in _oracle(t["prompt"], t["message_tree_id"])]
    out = list(get_format("oasst").read_stream(read_records(path)))
    assert all(isinstance(c, Conversation) for c in out)
    assert [c.id for c in out] == want
    assert len(want) == len(set(want))
    for c in out:
        assert c.roles()[0] == "user" and c.roles()[-1] == "assistant"
        assert c.roles() == ["user", "assistant"] * (len(c.turns) // 2)


def test_real_nested_messages_and_their_flat_rows_agree(shared_data):
    path = shared_data / "formats" / "oasst1" / "en_100_message.jsonl"
    nested = list(get_format("oasst").read_stream(read_records(path)))
    roots = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    rows = [r for root in roots for r in flatten(root)]
    assert len(rows) == 1167
    flat = list(get_format("oasst").read_stream(rows_stream(rows)))
    # Every row is held by a conversation or rejected, once.
    held = {t.meta["message_id"] for c in convs(flat) for t in c.turns}
    refused = [x.raw["message_id"] for x in flat if isinstance(x, Rejection)]
    assert len(refused) == len(set(refused)) and not held & set(refused)
    assert held | set(refused) == {r["message_id"] for r in rows}
    flat = convs(flat)
    assert [c.id for c in flat] == [c.id for c in nested]
    assert [[(t.role, t.content) for t in c.turns] for c in flat] == [
        [(t.role, t.content) for t in c.turns] for c in nested
    ]
    best = list(get_format("oasst", best=True).read_stream(read_records(path)))
    assert len(best) == len(roots)  # one path per tree
