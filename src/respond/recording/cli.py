"""`respond recordings ...`: inspect and maintain a recordings directory.

    list [--test T] [--endpoint E]     one line per recording
    show HASH_OR_PREFIX                print a recording (matched by computed hash, or file name prefix)
    find (--hash H | --test T)         paths of matching recordings
    diff A B                           field-by-field diff of two recordings' requests (exit 1 if they differ)
    prune [--used-log FILE] [--dry-run]  delete recordings whose hash is not in a usage log
    renormalize [--dry-run]            rewrite files: scrub secrets, normalize ids/created, rename to <hash>.json

Every subcommand takes `--dir` (default: $RESPOND_RECORDINGS_DIR, else the configured recordings dir).
Wire it with `configure_parser(subparser)` + `run(args)`, or call `main(argv)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from respond.recording.diff import diff
from respond.recording.hashing import normalize
from respond.recording.normalize import IdNormalizer
from respond.recording.recorder import USAGE_LOG_NAME
from respond.recording.scrub import scrub_body, scrub_headers, scrub_url
from respond.recording.store import (
    Entry,
    RecordingStore,
    make_entry,
    read_record,
    record_hash,
    write_json_atomic,
)


class CLIError(Exception):
    """A user-facing failure: printed to stderr, exit status 2."""


def default_dir() -> Path:
    env = os.environ.get("RESPOND_RECORDINGS_DIR")
    if env:
        return Path(env).expanduser()
    from respond.config import load_config

    return load_config().resolved_recordings_dir()


def _store(args: argparse.Namespace) -> RecordingStore:
    directory = Path(args.dir).expanduser() if args.dir else default_dir()
    if not directory.is_dir():
        raise CLIError(f"recordings directory {directory} does not exist")
    return RecordingStore(directory)


def _match(store: RecordingStore, ref: str) -> Entry:
    """A recording by path, computed hash prefix, or file name prefix; exactly one must match."""
    as_path = Path(ref)
    if as_path.suffix == ".json" and as_path.is_file():
        record = read_record(as_path)
        if record is None:
            raise CLIError(f"{ref} is not a recording")
        return make_entry(as_path.resolve(), record, 0)
    entries = store.entries()
    found = [e for e in entries if e.request_hash.startswith(ref)] or \
        [e for e in entries if e.path.name.startswith(ref)]
    if not found:
        raise CLIError(f"no recording matches {ref!r} in {store.directory}")
    if len(found) > 1:
        names = "\n".join(f"  {e.request_hash[:16]}  {e.path.name}" for e in found[:20])
        raise CLIError(f"{ref!r} is ambiguous ({len(found)} recordings):\n{names}")
    return found[0]


def _line(e: Entry) -> str:
    kind = "stream" if e.is_streaming else "call"
    if e.has_error:
        kind += "+error"
    return "\t".join([e.request_hash[:16], e.method, e.endpoint, e.model or "-", kind, e.test_id or "-",
                      e.path.name])


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    shown = 0
    for e in store.entries():
        if args.test and args.test not in (e.test_id or ""):
            continue
        if args.endpoint and args.endpoint not in e.endpoint:
            continue
        print(_line(e), file=out)
        shown += 1
    print(f"{shown} recording(s) in {store.directory}", file=sys.stderr)
    return 0


def _cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    entry = _match(_store(args), args.ref)
    record = read_record(entry.path)
    print(f"# {entry.path} (hash {entry.request_hash})", file=out)
    print(json.dumps(record, indent=2, ensure_ascii=False), file=out)
    return 0


def _cmd_find(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    found = [e for e in store.entries()
             if (args.hash and (e.request_hash.startswith(args.hash) or e.path.name.startswith(args.hash)))
             or (args.test and args.test in (e.test_id or ""))]
    for e in found:
        print(f"{e.path}\t{e.request_hash}\t{e.endpoint}\t{e.test_id or '-'}", file=out)
    return 0 if found else 1


def _cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    a, b = _match(store, args.a), _match(store, args.b)
    lines: list[str] = []
    for label, x, y in (("method", a.method, b.method), ("endpoint", a.endpoint, b.endpoint),
                        ("test_id", a.test_id, b.test_id)):
        if x != y:
            lines.append(f"{label}: {x!r} != {y!r}")
    lines.extend(f"body.{line}" if not line.startswith("<root>") else f"body{line[6:]}"
                 for line in diff(normalize(a.body), normalize(b.body)))
    print(f"# {a.path.name} (A) vs {b.path.name} (B): {len(lines)} difference(s), A != B", file=out)
    for line in lines:
        print(line, file=out)
    return 1 if lines else 0


def _read_usage_log(path: Path) -> set[str]:
    if not path.is_file():
        raise CLIError(f"usage log {path} does not exist (set RESPOND_RECORDING_USAGE_LOG=1 and run the tests)")
    hashes = {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    if not hashes:
        raise CLIError(f"usage log {path} is empty: refusing to delete every recording")
    return hashes


def _cmd_prune(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    used = _read_usage_log(Path(args.used_log) if args.used_log else store.directory / USAGE_LOG_NAME)
    removed = 0
    for e in store.entries():
        if e.request_hash in used:
            continue
        print(f"{'would delete' if args.dry_run else 'deleted'}\t{e.path}", file=out)
        if not args.dry_run:
            e.path.unlink(missing_ok=True)
        removed += 1
    print(f"{removed} unused recording(s) {'found' if args.dry_run else 'deleted'}", file=sys.stderr)
    return 0


def renormalize_record(record: dict[str, Any]) -> dict[str, Any]:
    """A recording with secrets scrubbed, ids normalized, created zeroed (already-normalized ids are kept)."""
    req = dict(record["request"])
    req["headers"] = scrub_headers(req.get("headers"))
    req["body"] = scrub_body(req.get("body"))
    req["url"] = scrub_url(str(req.get("url") or ""))
    req["endpoint"] = scrub_url(str(req.get("endpoint") or ""))
    new: dict[str, Any] = {"test_id": record.get("test_id"), "request": req}
    normalizer = IdNormalizer(record_hash(new), record.get("id_normalization_mapping") or {})
    response = dict(record.get("response") or {})
    response["body"] = _renormalize_body(response.get("body"), normalizer)
    if isinstance(response.get("error"), dict) and response["error"].get("body") is not None:
        response["error"] = {**response["error"], "body": scrub_body(response["error"]["body"])}
    new["response"] = response
    new["id_normalization_mapping"] = normalizer.mapping
    for key, value in record.items():  # keep any other top-level field (e.g. a note) as it was
        new.setdefault(key, value)
    return new


def _renormalize_body(body: Any, normalizer: IdNormalizer) -> Any:
    def one(item: Any) -> Any:
        if isinstance(item, dict) and "__type__" in item and "__data__" in item:
            return {**item, "__data__": normalizer.apply(item["__data__"])}
        return normalizer.apply(item)

    if isinstance(body, list):
        return [one(item) for item in body]
    return one(body)


def _cmd_renormalize(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    changed = 0
    for e in store.entries():
        record = read_record(e.path)
        if record is None:
            continue
        new = renormalize_record(record)
        target = e.path.with_name(f"{record_hash(new)}.json")
        if new == record and target == e.path:
            continue
        changed += 1
        note = e.path.name if target == e.path else f"{e.path.name} -> {target.name}"
        if target != e.path and target.exists():
            note += " (replaces an existing file with the same request)"
        print(f"{'would rewrite' if args.dry_run else 'rewrote'}\t{note}", file=out)
        if not args.dry_run:
            write_json_atomic(target, new)
            if target != e.path:
                e.path.unlink(missing_ok=True)
    print(f"{changed} recording(s) {'to rewrite' if args.dry_run else 'rewritten'}", file=sys.stderr)
    return 0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the `list/show/find/diff/prune/renormalize` subcommands to `parser` (e.g. `respond recordings`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help="recordings directory (default: $RESPOND_RECORDINGS_DIR or the config's)")
    sub = parser.add_subparsers(dest="recordings_command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", parents=[common], help="list recordings")
    p.add_argument("--test", help="only recordings whose test id contains this")
    p.add_argument("--endpoint", help="only recordings whose endpoint contains this")
    p.set_defaults(recordings_func=_cmd_list)

    p = sub.add_parser("show", parents=[common], help="print one recording")
    p.add_argument("ref", metavar="HASH_OR_PREFIX")
    p.set_defaults(recordings_func=_cmd_show)

    p = sub.add_parser("find", parents=[common], help="find recordings by hash or test id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--hash", help="computed hash (or file name) prefix")
    group.add_argument("--test", help="test id substring")
    p.set_defaults(recordings_func=_cmd_find)

    p = sub.add_parser("diff", parents=[common], help="diff two recordings' requests field by field")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.set_defaults(recordings_func=_cmd_diff)

    p = sub.add_parser("prune", parents=[common], help="delete recordings not listed in a usage log")
    p.add_argument("--used-log", help=f"usage log (default: <dir>/{USAGE_LOG_NAME})")
    p.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    p.set_defaults(recordings_func=_cmd_prune)

    p = sub.add_parser("renormalize", parents=[common],
                       help="rewrite every file: scrub secrets, normalize ids/created, name it <hash>.json")
    p.add_argument("--dry-run", action="store_true", help="only print what would change")
    p.set_defaults(recordings_func=_cmd_renormalize)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute parsed `respond recordings ...` arguments; returns the exit status."""
    try:
        return args.recordings_func(args, out or sys.stdout)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `respond recordings show X | head`
        sys.stderr.close()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="respond recordings", description="Inspect and maintain recordings.")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
