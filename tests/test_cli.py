"""The ``convkit`` command line, called as ``main(argv)``: exit codes and exact messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convkit.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SAMPLE = str(EXAMPLES / "sharegpt_sample.json")
TOKENIZER = str(EXAMPLES / "tokenizer.json")


def lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_readme_example(tmp_path, capsys):
    out, rej, st = tmp_path / "clean.jsonl", tmp_path / "rejects.jsonl", tmp_path / "stats.json"
    argv = [
        "convert",
        SAMPLE,
        "-o",
        str(out),
        "--rejects",
        str(rej),
        "--stats",
        str(st),
        "--tokenizer",
        TOKENIZER,
        "--max-tokens",
        "160",
    ]
    assert main(argv) == 0
    assert [o["id"] for o in lines(out)] == [
        "ex-code_0",
        "ex-code_1",
        "ex-math_0",
        "ex-table_0",
        "ex-recipe_0",
        "ex-long_0",
        "ex-long_1",
        "ex-long_2",
    ]
    assert [(r["id"], r["reason"]) for r in lines(rej)] == [
        ("ex-table", "trailing_user_turn"),
        ("ex-recipe-copy", "duplicate_content"),
        ("ex-blocked", "blocked_phrase"),
        ("ex-ratelimit", "blocked_response"),
        ("ex-short", "too_short"),
        ("ex-broken", "invalid_record"),
    ]
    math = lines(out)[2]["conversations"][1]["value"]
    assert math == "The area is $\\pi r^2$, for radius $r$."
    stats = json.loads(st.read_text())
    assert (stats["conversations_in"], stats["conversations_out"], stats["segments"]) == (10, 5, 8)
    assert capsys.readouterr().err == (
        "convkit: 10 conversations in, 5 kept as 8 segments, 5 rejected, 1 part dropped\n"
        "  rejected blocked_phrase: 1\n"
        "  rejected blocked_response: 1\n"
        "  rejected duplicate_content: 1\n"
        "  rejected invalid_record: 1\n"
        "  rejected too_short: 1\n"
        "  dropped part trailing_user_turn: 1\n"
    )


def test_quiet(tmp_path, capsys):
    assert main(["convert", SAMPLE, "-o", str(tmp_path / "o.jsonl"), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_stdout_output(capsys):
    assert main(["convert", SAMPLE, "-o", "-", "-q", "--to", "messages"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["id"] == "ex-code" and first["messages"][0]["role"] == "user"


def test_missing_input_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["convert", str(missing), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == f"convkit: error: input file not found: {missing}\n"


def test_a_directory_as_input_exits_2(tmp_path, capsys):
    assert main(["convert", str(tmp_path), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == f"convkit: error: input is a directory, not a file: {tmp_path}\n"


def test_compressed_standard_input_and_a_pipe_as_input(tmp_path):
    import gzip

    good = {"id": "a", "conversations": [{"from": "human", "value": "A question long enough?"},
                                         {"from": "gpt", "value": "An answer."}]}
    data = gzip.compress((json.dumps(good) + "\n").encode())
    cmd = [sys.executable, "-m", "convkit", "convert", "-", "-o", "-", "-q"]
    proc = subprocess.run(cmd, input=data, capture_output=True)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == ["a"]
    if hasattr(os, "mkfifo"):
        import threading

        fifo = tmp_path / "in.fifo"
        os.mkfifo(fifo)
        feeder = threading.Thread(target=fifo.write_bytes, args=(data,))
        feeder.start()
        proc = subprocess.run([*cmd[:4], str(fifo), "-o", "-", "-q"], capture_output=True)
        feeder.join(timeout=30)
        assert (proc.returncode, proc.stderr) == (0, b"")
        assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == ["a"]


def test_malformed_input_exits_1_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "a", "conversations": []},\n {"id": "b" "conversations": []}]')
    out = tmp_path / "o.jsonl"
    assert main(["convert", str(bad), "-o", str(out), "--rejects", str(tmp_path / "r.jsonl")]) == 1
    assert capsys.readouterr().err == (
        f"convkit: error: malformed JSON array: Expecting ',' delimiter in record 1 — at {bad} line 2 byte 47\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_on_error_skip(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "conversations": [{"from": "human", "value": "What is two plus two?"}, '
        '{"from": "gpt", "value": "Two plus two is four."}]}\nnot json\n'
    )
    out, rej = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    assert (
        main(["convert", str(bad), "-o", str(out), "--rejects", str(rej), "--on-error", "skip"])
        == 0
    )
    assert [o["id"] for o in lines(out)] == ["a"]
    assert [(r["reason"], r["line"]) for r in lines(rej)] == [("malformed_json", 2)]


def test_max_tokens_without_tokenizer(tmp_path, capsys):
    assert main(["convert", SAMPLE, "-o", str(tmp_path / "o.jsonl"), "--max-tokens", "100"]) == 2
    assert (
        capsys.readouterr().err
        == "convkit: error: max_tokens needs a tokenizer (--tokenizer PATH)\n"
    )


def test_options_that_would_do_nothing_are_refused(tmp_path, capsys):
    out = str(tmp_path / "o.jsonl")
    assert main(["convert", SAMPLE, "-o", out, "--compat", "fastchat", "--html", "never"]) == 2
    assert capsys.readouterr().err == (
        "convkit: error: compat (--compat) reproduces FastChat's HTML conversion, which "
        "html='never' (--html never) turns off\n"
    )
    argv = ["convert", SAMPLE, "-o", out, "--to", "text", "--template", "chatml"]
    assert main([*argv, "--eos-token", "</s>"]) == 2
    assert capsys.readouterr().err == (
        "convkit: error: eos_token (--eos-token) has no effect: chat template 'chatml' never "
        "uses eos_token\n"
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_tokenizer_file(tmp_path, capsys):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{}")
    code = main(
        [
            "convert",
            SAMPLE,
            "-o",
            str(tmp_path / "o.jsonl"),
            "--tokenizer",
            str(bad),
            "--max-tokens",
            "9",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"convkit: error: cannot load tokenizer '{bad}': {bad} is not a valid tokenizer.json ("
    )


def test_unknown_filter(tmp_path, capsys):
    assert main(["convert", SAMPLE, "-o", str(tmp_path / "o.jsonl"), "--disable", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit: error: unknown filter 'nope'; known: blocked_phrase, ")


def test_disable_filters_keeps_more(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    assert (
        main(["convert", SAMPLE, "-o", str(out), "-q", "--disable", "blocked_phrase,too_short"])
        == 0
    )
    assert {"ex-blocked", "ex-short"} <= {o["id"] for o in lines(out)}


def test_blocked_phrase_replaces_the_default_list(tmp_path):
    out = tmp_path / "o.jsonl"
    assert main(["convert", SAMPLE, "-o", str(out), "-q", "--blocked-phrase", "pancake"]) == 0
    ids = {o["id"] for o in lines(out)}
    assert "ex-blocked" in ids and "ex-recipe" not in ids


def test_unknown_input_format(tmp_path, capsys):
    assert main(["convert", SAMPLE, "-o", str(tmp_path / "o.jsonl"), "--from", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit: error: unknown format 'nope'; known formats: alpaca, baize, ")


def test_format_option_for_another_format(tmp_path, capsys):
    assert main(["convert", SAMPLE, "-o", str(tmp_path / "o.jsonl"), "--fewshot", "2"]) == 2
    assert capsys.readouterr().err == (
        "convkit: error: --fewshot does not apply to --from sharegpt --to sharegpt; "
        "it is for --from natural-instructions, --from super-ni\n"
    )


def test_reasons_lists_every_reason(capsys):
    assert main(["reasons"]) == 0
    out = capsys.readouterr().out
    for reason in ("too_short", "oversize_exchange", "malformed_json", "duplicate_content"):
        assert any(line.startswith(reason + " ") for line in out.splitlines())


def test_reasons_cover_every_reason_the_readers_and_writers_raise():
    """Every reason literal given to RecordRejected or Rejection in the package is listed."""
    import re
    from pathlib import Path

    import convkit
    from convkit.reasons import ALL_REASONS
    from convkit.templates import TemplateRenderError

    raised = {TemplateRenderError.reason}
    call = re.compile(r'\b(?:RecordRejected|Rejection)\(\s*"([a-z_]+)"')
    for path in Path(convkit.__file__).parent.rglob("*.py"):
        raised.update(call.findall(path.read_text(encoding="utf-8")))
    assert {"no_turns", "repeated_ai_marker", "tree_not_contiguous", "no_output"} <= raised
    assert sorted(raised - set(ALL_REASONS)) == []


def test_reasons_cover_every_split_drop_reason():
    from convkit.reasons import SPLIT_REASONS
    from convkit.split import DROP_REASONS

    assert set(SPLIT_REASONS) == set(DROP_REASONS)


def test_formats_lists_readers(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    assert "sharegpt (also: vicuna, wizardlm-v2): reads and writes\n" in out
    assert '    auto-detected by: "conversations" as a list whose first item has "from"\n' in out


def test_detect(tmp_path, capsys):
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        '{"instruction": "Add 2 and 3.", "output": "5"}\n{"messages": []}\n[1]\n'
        '{"conversation": [{"role": "user", "content": "Hi"}]}\n'
        '{"conversations": [{"from": "human", "value": "Hi"}]}\n'
    )
    assert main(["detect", str(src)]) == 0
    captured = capsys.readouterr()
    assert captured.out == (
        f'{src}:0\talpaca\tstring "instruction" and "output"\n'
        f'{src}:1\tmessages\t"messages" as a list\n'
        f"{src}:2\t-\tno reader recognises a JSON array\n"
        f'{src}:3\tmessages\t"conversation" as a list of roles\n'
        f'{src}:4\tsharegpt\t"conversations" as a list whose first item has "from"\n'
    )
    assert captured.err == "2\tmessages\n1\t-\n1\talpaca\n1\tsharegpt\n"


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert"])
    assert e.value.code == 2


def test_python_dash_m_runs_the_cli(tmp_path):
    # Run from outside the checkout so the installed package is what runs.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-m", "convkit", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    import convkit

    assert (done.returncode, done.stdout) == (0, f"convkit {convkit.__version__}\n")


def test_template_time_flag(tmp_path, capsys):
    tpl = tmp_path / "dated.jinja"
    tpl.write_text("{{ messages[0].content }}|{{ strftime_now('%d %b %Y') }}", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    argv = ["convert", SAMPLE, "-o", str(out), "--to", "text", "--template", str(tpl)]
    assert main([*argv, "--template-time", "2024-07-26"]) == 0
    assert {r["text"].rsplit("|", 1)[1] for r in lines(out)} == {"26 Jul 2024"}
    capsys.readouterr()
    assert main([*argv, "--template-time", "July 26"]) == 2
    assert capsys.readouterr().err == (
        "convkit: error: template_time must be an ISO 8601 date or time (2024-07-26, "
        "2024-07-26T09:30:00), got 'July 26'\n"
    )


def _oasst_tree(tmp_path):
    tree = {"message_tree_id": "t", "tree_state": "ready_for_export", "prompt": {
        "message_id": "p", "role": "prompter", "text": "Name a colour, please.", "replies": [
            {"message_id": "a1", "role": "assistant", "text": "Blue is a colour.", "rank": 1,
             "replies": []},
            {"message_id": "a0", "role": "assistant", "text": "Red is a colour.", "rank": 0,
             "replies": []},
        ]}}
    src = tmp_path / "tree.jsonl"
    src.write_text(json.dumps(tree) + "\n")
    return src


@pytest.mark.parametrize(
    ("flags", "ids"),
    [
        ([], ["t/a1", "t/a0"]),
        (["--best"], ["t/a0"]),
        (["--oasst-best"], ["t/a0"]),
        (["--best", "--no-best"], ["t/a1", "t/a0"]),
    ],
)
def test_switch_options_before_the_input_file(tmp_path, flags, ids):
    # A switch takes no value: the input file after it stays the input.
    src = _oasst_tree(tmp_path)
    out = tmp_path / "o.jsonl"
    argv = ["convert", "--from", "oasst", "-o", str(out), "-q", *flags, str(src)]
    assert main(argv) == 0
    assert [r["id"] for r in lines(out)] == ids


def _dev_full() -> bool:
    import stat

    try:
        return stat.S_ISCHR(os.stat("/dev/full").st_mode)
    except OSError:
        return False


@pytest.mark.skipif(not _dev_full(), reason="needs /dev/full, a disk that is always full")
@pytest.mark.parametrize("to_stdout", [False, True])
def test_a_full_disk_is_a_one_line_error_with_exit_3(tmp_path, to_stdout):
    src = tmp_path / "in.jsonl"
    good = {"id": "a", "conversations": [{"from": "human", "value": "A question long enough?"},
                                         {"from": "gpt", "value": "An answer."}]}
    src.write_text(json.dumps(good) + "\n")
    args = [sys.executable, "-m", "convkit", "convert", str(src), "-q",
            "--stats", str(tmp_path / "s.json")]
    if to_stdout:
        with open("/dev/full", "wb") as full:
            proc = subprocess.run([*args, "-o", "-"], stdout=full, stderr=subprocess.PIPE,
                                  text=True)
        name = "standard output"
    else:
        proc = subprocess.run([*args, "-o", "/dev/full"], capture_output=True, text=True)
        name = "/dev/full"
    assert (proc.returncode, proc.stderr) == (
        3, f"convkit: error: cannot write {name}: No space left on device\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no stats either


@pytest.mark.skipif(not _dev_full(), reason="needs /dev/full, a disk that is always full")
def test_an_output_is_not_renamed_when_another_fails_at_the_end(tmp_path):
    # Every output is written and synced before any is renamed: the rejects' full disk at the
    # last flush leaves the output, which was fine, under no final name either.
    from convkit import OutputError, convert

    src = tmp_path / "in.jsonl"
    good = {"id": "a", "conversations": [{"from": "human", "value": "A question long enough?"},
                                         {"from": "gpt", "value": "An answer."}]}
    src.write_text(json.dumps(good) + "\n" + json.dumps({"id": "b"}) + "\n")
    with pytest.raises(OutputError) as e:
        convert(src, tmp_path / "o.jsonl", rejects="/dev/full", stats=tmp_path / "s.json")
    assert str(e.value) == "cannot write /dev/full: No space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_an_output_named_parquet_is_written_as_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "Add two and three.", "output": "Five."}\n')
    out = tmp_path / "out.parquet"
    assert main(["convert", str(src), "--from", "alpaca", "-o", str(out), "-q"]) == 0
    rows = pq.read_table(out).to_pylist()
    assert [[m["content"] for m in r["messages"]] for r in rows] == [["Add two and three.", "Five."]]


@pytest.mark.skipif(not _dev_full(), reason="needs /dev/full, a disk that is always full")
def test_a_parquet_output_that_cannot_be_written_exits_3(tmp_path):
    pytest.importorskip("pyarrow")
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "Add two and three.", "output": "Five."}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "convkit", "convert", str(src), "--from", "alpaca", "--to",
         "parquet", "-o", "/dev/full", "-q"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith("convkit: error: cannot write /dev/full: ")
    assert proc.stderr.endswith("No space left on device\n")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the helper through /proc")
def test_sigterm_to_the_process_group_with_helpers_exits_143(tmp_path):
    # timeout, systemd and a terminal's Ctrl-C signal the whole group: the helper too. It
    # leaves the signal to the main process, so the run ends as terminated, not as a worker
    # failure (exit 1).
    import signal
    import time

    long = "<p>" + "Some words of an answer, and then a few more of them. " * 40 + "</p>"
    rec = {"conversations": [{"from": "human", "value": "A question long enough?"},
                             {"from": "gpt", "value": long}] * 3}
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), **rec}) + "\n" for i in range(20000)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "convkit", "convert", str(src), "-o", str(out_dir / "o.jsonl"),
         "--tokenizer", TOKENIZER, "--max-tokens", "256", "--workers", "2"],
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not children.read_text().split():
        time.sleep(0.05)
    time.sleep(1.5)  # the helper has started and is at work
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (143, "convkit: terminated; no output was written\n")
    assert list(out_dir.iterdir()) == []


def test_sigterm_mid_run_exits_143_and_leaves_no_files(tmp_path):
    import signal
    import time

    # Reading standard input that never ends: the run is mid-way when the signal comes.
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "convkit", "convert", "-", "-o", str(out_dir / "o.jsonl"),
         "--rejects", str(out_dir / "r.jsonl"), "--stats", str(out_dir / "s.json")],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    good = {"id": "a", "conversations": [{"from": "human", "value": "A question long enough?"},
                                         {"from": "gpt", "value": "An answer."}]}
    proc.stdin.write(json.dumps(good) + "\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not any(out_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the temporary output exists: the run has started
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err == "convkit: terminated; no output was written\n"
    assert list(out_dir.iterdir()) == []


def test_standard_output_appended_to_the_input_or_closed_is_refused(tmp_path):
    # Appended to its own input, the run would read what it writes.
    rec = {"id": "a", "conversations": [{"from": "human", "value": "A question here?"},
                                         {"from": "gpt", "value": "An answer."}]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    cmd = [sys.executable, "-m", "convkit", "convert", str(src), "-o", "-", "-q"]
    with open(src, "ab") as same:
        proc = subprocess.run(cmd, stdout=same, stderr=subprocess.PIPE, text=True)
    assert (proc.returncode, proc.stderr) == (
        2, f"convkit: error: output would overwrite the input {src}\n"
    )
    assert src.read_text() == json.dumps(rec) + "\n"
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: os.close(1))
    assert (proc.returncode, proc.stderr) == (
        3, "convkit: error: cannot write standard output: it is closed\n"
    )
