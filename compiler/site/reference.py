"""Reference pages: the languages (each grammar shown from its own ``.lark`` file, read at build
time), the naming rules (from ``compiler/naming/rules.yaml``) and the command line (from the
``mirc`` argument parser itself, handed in by the caller: the CLI sits above this layer)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from compiler.naming import derive_series
from compiler.naming.engine import load_rules
from compiler.plan.model import PlannedFile
from compiler.resources import PACKAGE_DIR
from compiler.site import links

GRAMMARS_DIR = PACKAGE_DIR / "grammars"
# Titles of the grammars mirc ships, in the order the languages index lists them; a grammar
# file not named here is still shown, titled by its file name.
GRAMMAR_TITLES = {
    "mir": "MIR identifiers",
    "mecha": "Mecha merge recipes",
    "mmpretrain": "MMPretrain model names",
    "checkpoint": "MMPretrain checkpoint names",
    "air": "CivitAI AIRs",
    "repo": "Hub repo ids",
}
# The seed's two examples, then a few that exercise the other rules.
NAMING_EXAMPLES = (
    "tencent-hunyuan/hunyuandiT-v1.2-diffusers",
    "black-forest-labs/FLUX.1-dev",
    "stabilityai/stable-diffusion-xl-base-1.0",
    "stabilityai/stable-cascade-prior",
    "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    "Qwen/Qwen2.5-7B-Instruct",
)


def grammar_files() -> list[tuple[str, str]]:
    """Every grammar in ``compiler/grammars/``: (name, text), known ones first."""
    found = {path.stem: path.read_text("utf-8") for path in GRAMMARS_DIR.glob("*.lark")}
    order = [name for name in GRAMMAR_TITLES if name in found]
    order += sorted(name for name in found if name not in GRAMMAR_TITLES)
    return [(name, found[name]) for name in order]


def grammar_title(name: str) -> str:
    return GRAMMAR_TITLES.get(name, f"{name}.lark")


def plan_language_pages() -> list[PlannedFile]:
    grammars = grammar_files()
    index = [
        {
            "title": grammar_title(name),
            "file": f"compiler/grammars/{name}.lark",
            "href": links.link(links.LANGUAGES_INDEX, links.language_page(name)),
            "summary": _summary(text),
        }
        for name, text in grammars
    ]
    pages = [
        PlannedFile(
            links.language_page(name),
            "site/language.md.j2",
            {
                "title": grammar_title(name),
                "file": f"compiler/grammars/{name}.lark",
                "header": header_blocks(text),
                "grammar": text,
                "lines": text.count("\n") + (not text.endswith("\n")),
            },
            f"compiler/grammars/{name}.lark",
        )
        for name, text in grammars
    ]
    return [
        PlannedFile(
            links.LANGUAGES_INDEX,
            "site/languages.md.j2",
            {"grammars": index},
            "compiler/grammars/",
        ),
        *pages,
    ]


def header_blocks(text: str) -> list[dict[str, Any]]:
    """The grammar's leading ``//`` comment as prose paragraphs (with their `code` spans) and,
    for lines indented past the comment's own margin, example blocks."""
    blocks: list[dict[str, Any]] = []
    prose: list[str] = []
    example: list[str] = []

    def flush() -> None:
        if prose:
            blocks.append({"kind": "text", "segments": code_spans(" ".join(prose))})
        if example:
            blocks.append({"kind": "code", "text": "\n".join(example)})
        prose.clear()
        example.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("//"):
            break
        body = stripped[2:]
        if body.startswith(("   ", "\t")):
            if prose:
                flush()
            example.append(body.strip())
        elif body.strip():
            if example:
                flush()
            prose.append(body.strip())
        else:
            flush()
    flush()
    return blocks


def code_spans(text: str) -> list[tuple[str, bool]]:
    """``text`` cut at its backticks: (part, is_code) pairs; unpaired backticks stay text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        return [(text, False)]
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part]


def _summary(text: str) -> str:
    first = next((b for b in header_blocks(text) if b["kind"] == "text"), None)
    return "".join(part for part, _ in first["segments"]) if first else ""


def plan_naming_page() -> PlannedFile:
    rules = [
        {
            "position": position,
            "name": rule.name,
            "does": rule.does,
            "pattern": rule.pattern.pattern,
            "replacement": rule.replacement if rule.does == "replace" else "",
            "why": rule.why,
        }
        for position, rule in enumerate(load_rules(), start=1)
    ]
    examples = []
    for repo in NAMING_EXAMPLES:
        derived = derive_series(repo)
        examples.append(
            {
                "repo": repo,
                "series": derived.series,
                "compat": derived.compat_name or "",
                "rules": ", ".join(dict.fromkeys(f.rule for f in derived.fired)),
            }
        )
    context = {"rules": rules, "examples": examples}
    return PlannedFile(links.NAMING, "site/naming.md.j2", context, "compiler/naming/rules.yaml")


def plan_cli_page(parser: argparse.ArgumentParser) -> PlannedFile:
    """Every subcommand of ``parser`` with its usage, description and arguments."""
    commands = []
    for summary, sub in _subcommands(parser):
        commands.append(
            {
                "name": sub.prog,
                "anchor": sub.prog.replace(" ", "-"),
                "summary": summary,
                "description": sub.description or "",
                "usage": usage(sub),
                "arguments": [_argument(a, sub.prog) for a in _documented(sub)],
            }
        )
    context = {
        "prog": parser.prog,
        "description": parser.description or "",
        "usage": usage(parser),
        "options": [_argument(a, parser.prog) for a in _documented(parser) if a.option_strings],
        "commands": commands,
    }
    return PlannedFile(links.CLI, "site/cli.md.j2", context, "compiler/cli/")


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield helps.get(name, ""), sub


def _documented(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        and not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
    ]


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line, written here rather than by argparse, whose wrapping follows the
    terminal's width: the page must not depend on where it was built."""
    parts = [parser.prog]
    for action in _documented(parser):
        parts.append(_usage_part(action))
    if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        parts.append("COMMAND ...")
    return " ".join(parts)


def _usage_part(action: argparse.Action) -> str:
    value = _value_name(action)
    if not action.option_strings:
        if action.nargs == "?":
            return f"[{value}]"
        if action.nargs == "+":
            return f"{value} [{value} ...]"
        if action.nargs == "*":
            return f"[{value} ...]"
        return value
    text = action.option_strings[0] + (f" {value}" if action.nargs != 0 else "")
    return text if action.required else f"[{text}]"


def _value_name(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest if not action.option_strings else action.dest.upper()


def _argument(action: argparse.Action, prog: str) -> dict[str, Any]:
    takes_value = action.nargs != 0
    default = action.default
    shown_default = (
        "" if default in (None, False, argparse.SUPPRESS) or not takes_value else str(default)
    )
    return {
        "names": ", ".join(action.option_strings) or _value_name(action),
        "value": _value_name(action) if takes_value and action.option_strings else "",
        "choices": ", ".join(map(str, action.choices)) if action.choices else "",
        "default": shown_default,
        "help": _help(action, prog),
    }


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%(" not in text:
        return text
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = prog
    if action.choices is not None:
        params["choices"] = ", ".join(map(str, action.choices))
    return text % params
