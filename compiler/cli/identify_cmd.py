"""``mirc identify PATH… [--json] [--hash]`` and ``mirc fingerprint FILE --id MIR_ID``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import MircError
from compiler.identify import (
    FileReport,
    Outcome,
    Pool,
    candidates,
    collect_files,
    guess_format,
    identify_files,
    suggest_fingerprint,
)
from compiler.identify.match import Score
from compiler.identify.report import report_json
from compiler.lang.mir import parse_mir
from compiler.registry import check_registry
from compiler.resources import default_spec_dir
from compiler.tensorfile import read_header

# Folders with more files than this get a progress bar (on a terminal only).
PROGRESS_FROM = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "identify",
        help="identify safetensors model files from their headers",
        description="Read each file's safetensors header (never a pickle), score every "
        "fingerprint of the registry against it, and report the MIR id of each component "
        "with the keys that decided it, ties, prediction type, parameters, dtypes and hashes.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--hash", action="store_true", help="also hash the tensor bytes (reads whole files)"
    )
    parser.set_defaults(handler=run)
    printer = subparsers.add_parser(
        "fingerprint",
        help="print a file's fingerprint block for a spec",
        description="Print the fingerprint entry (YAML, in the spec format) of a safetensors "
        "file, with distinctive keys chosen against the registry's other fingerprints.",
    )
    printer.add_argument("file", metavar="FILE")
    printer.add_argument("--id", required=True, metavar="MIR_ID", help="the variant's MIR id")
    printer.add_argument(
        "--format",
        dest="file_format",
        metavar="FORMAT",
        help="checkpoint format (default: guessed)",
    )
    printer.set_defaults(handler=run_fingerprint)


def _pool() -> Pool:
    result = check_registry(default_spec_dir())
    if result.linked is None:
        raise MircError([d for d in result.diagnostics if d.is_error])
    return candidates(result.linked)


def run(args: argparse.Namespace) -> int:
    files, problems = collect_files(args.paths)
    pool = _pool()
    outcomes = list(_with_progress(identify_files(files, pool, args.hash), len(files)))
    rejected = problems + [d for o in outcomes for d in o.diagnostics]
    reports = [o.report for o in outcomes if o.report is not None]
    if args.json:
        print_json({"files": [report_json(r) for r in reports]})
    else:
        for item in reports:
            print(render_report(item))
    print_diagnostics(rejected, as_json=args.json)
    return 1 if rejected else 0


def _with_progress(outcomes: Iterator[Outcome], total: int) -> Iterator[Outcome]:
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield from outcomes
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("identifying", total=total)
        for outcome in outcomes:
            progress.advance(task)
            yield outcome


def render_report(item: FileReport) -> str:
    """A file's report as text: one line per component, then size, prediction and hashes."""
    lines = [f"{item.path}:"]
    for finding in item.components:
        lines.append("  " + _score_line(finding.best))
        lines += [f"    tie: {_score_line(tie)}" for tie in finding.ties]
        if finding.ties:
            lines.append("    (the file's layout cannot tell these apart)")
    if not item.known:
        lines.append("  unknown: no fingerprint of the registry matches")
        lines += [f"    nearest: {_near_line(s)}" for s in item.nearest]
    dtypes = ", ".join(f"{d.dtype} {d.tensors}" for d in item.dtypes)
    lines.append(f"  tensors: {item.tensors} ({dtypes}); parameters: {item.parameters:,}")
    if item.extra_tensors:
        lines.append(f"  extra tensors beside the model (EMA): {item.extra_tensors}")
    if item.prediction.kind or item.prediction.ztsnr:
        kind = item.prediction.kind or "unknown"
        ztsnr = ", zero terminal SNR" if item.prediction.ztsnr else ""
        lines.append(f"  prediction: {kind}{ztsnr} ({'; '.join(item.prediction.evidence)})")
    lines.append(f"  layout hash: {item.hashes.layout}")
    lines.append(f"  layout+dtype hash: {item.hashes.layout_dtype}")
    if item.hashes.content is not None:
        lines.append(f"  content hash: {item.hashes.content}")
    return "\n".join(lines)


def _score_line(s: Score) -> str:
    where = f" under {s.view!r}" if s.view else ""
    keys = ", ".join(s.matched[:3]) + (" …" if len(s.matched) > 3 else "")
    return (
        f"{s.candidate.label}: {s.candidate.mir} ({s.candidate.fingerprint.format}{where}, "
        f"confidence {s.confidence:.2f}; decided by {keys})"
    )


def _near_line(s: Score) -> str:
    lacking = [
        f"{k} has another shape" if k in s.reshaped else f"lacks {k}" for k in s.missing[:2]
    ] + [f"has forbidden {k}" for k in s.forbidden[:1]]
    return (
        f"{s.candidate.mir} ({s.candidate.fingerprint.format}, {s.confidence:.2f}): "
        f"{', '.join(lacking)}"
    )


def run_fingerprint(args: argparse.Namespace) -> int:
    mir = parse_mir(args.id)
    header = read_header(args.file)
    pool = _pool()
    file_format = args.file_format or guess_format(header, pool)
    print(suggest_fingerprint(header, mir, pool, file_format), end="")
    return 0
