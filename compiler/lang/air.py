"""CivitAI AI Resource Identifiers (AIR).

``[urn:][air:]ECOSYSTEM:TYPE:SOURCE:ID[@VERSION][+FILE][.FORMAT]``, e.g.
``urn:air:sdxl:lora:civitai:328553@368189``.

The grammar (``compiler/grammars/air.lark``) is the definition; well-formed AIRs take a fast path
(one regular expression accepting exactly the grammar's language, kept in step by a property
test) and everything else goes through the grammar, so errors always come from it.

An AIR converts to a MIR id through a crosswalk kept as data (``air_crosswalk.yaml`` beside this
module): the ecosystem names a model family, the type says whether the resource *is* that family
(a checkpoint) or an add-on for it (a LoRA, an embedding …). Ecosystems or types the crosswalk
does not know give a warning, not an exception: the AIR itself is still valid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from lark import Tree

from compiler.diagnostics import Diagnostic, MircError, Span, did_you_mean
from compiler.lang.grammar import parse_or_raise
from compiler.lang.mir import MirId, parse_mir

MAX_LENGTH = 256
PREFIX = "urn:air:"

_KEY = r"[a-z0-9]+(?:[_-][a-z0-9]+)*"
_REF = r"[A-Za-z0-9_-]+"
_ID = r"[A-Za-z0-9_-]+(?:(?:/|\.(?![a-z]+\Z))[A-Za-z0-9_-]+)*"
# Possessive prefixes, as in the grammar, where "urn:" and "air:" outrank an ecosystem KEY.
_FAST = re.compile(
    rf"(?:urn:)?+(?:air:)?+({_KEY}):({_KEY}):({_KEY}):({_ID})"
    rf"(?:@({_REF}))?(?:\+({_REF}))?(?:\.([a-z]+))?"
)

# Labelled bad examples (lark's match_examples): the parser state each one fails in names the
# message. tests/test_air.py walks this table.
AIR_ERRORS: dict[str, list[str]] = {
    "an AIR needs ECOSYSTEM:TYPE:SOURCE:ID; expected ':' and the type after the ecosystem": [
        "sdxl",
        "urn:air:sdxl",
        "air:sdxl@1",
    ],
    "an AIR needs ECOSYSTEM:TYPE:SOURCE:ID; expected ':' and the source after the type": [
        "sdxl:lora",
        "urn:air:sdxl:lora@1",
        "civitai:123",
    ],
    "an AIR needs ECOSYSTEM:TYPE:SOURCE:ID; expected ':' and the id after the source": [
        "sdxl:lora:civitai",
        "sdxl:lora:civitai@1",
    ],
    "expected the ecosystem (e.g. sdxl)": [":lora:civitai:1", "urn:air::lora:civitai:1", "urn:"],
    "expected the resource type (e.g. checkpoint, lora)": ["sdxl::civitai:1", "sdxl:"],
    "expected the source (e.g. civitai, huggingface)": ["sdxl:lora::1", "sdxl:lora:"],
    "expected the resource id after the source": ["sdxl:lora:civitai:", "sdxl:lora:civitai:@1"],
    "expected a version after '@'": ["sdxl:lora:civitai:1@", "sdxl:lora:civitai:1@+2"],
    "expected a file id after '+'": ["sdxl:lora:civitai:1+", "sdxl:lora:civitai:1@2+.x"],
    "expected a format after '.' (e.g. safetensor)": ["sdxl:lora:civitai:1@2.", "sdxl:lora:x:1+2."],
    "unexpected text after the AIR": [
        "sdxl:lora:civitai:1:2",
        "sdxl:lora:civitai:1@2@3",
        "sdxl:lora:civitai:1+2@3",
        "sdxl:lora:civitai:1@2.pt.x",
    ],
    "empty AIR": [""],
}

# A character no token can start with is worded by its class, whatever the parser state. (Letters,
# digits, '_' and '-' can always start an ID, so misplaced ones are worded by the table above.)
AIR_CHAR_ERRORS: list[tuple[str, str]] = [
    (r"\s", "whitespace is not allowed in an AIR"),
    (r"/", "'/' must stand between the parts of an id (org/name)"),
    (r".", "AIR fields are letters, digits, '_' and '-' (ids may also hold '/' and '.')"),
]


@dataclass(frozen=True, slots=True)
class Air:
    """A parsed AIR; ``str()`` is its canonical spelling, always ``urn:air:``-prefixed."""

    ecosystem: str
    type: str
    source: str
    id: str
    version: str | None = None
    file: str | None = None
    format: str | None = None

    def __str__(self) -> str:
        text = f"{PREFIX}{self.ecosystem}:{self.type}:{self.source}:{self.id}"
        if self.version is not None:
            text += f"@{self.version}"
        if self.file is not None:
            text += f"+{self.file}"
        if self.format is not None:
            text += f".{self.format}"
        return text

    def to_json(self) -> dict[str, str | None]:
        return {
            "air": str(self),
            "ecosystem": self.ecosystem,
            "type": self.type,
            "source": self.source,
            "id": self.id,
            "version": self.version,
            "file": self.file,
            "format": self.format,
        }


def parse_air(text: str, file: str = "<arg>") -> Air:
    """Parse an AIR; a malformed one raises :class:`MircError` with a positioned diagnostic."""
    match = _FAST.fullmatch(text) if len(text) <= MAX_LENGTH else None
    if match is not None:
        return Air(*match.groups())
    return _parse_slow(text, file)


def _parse_slow(text: str, file: str) -> Air:
    if len(text) > MAX_LENGTH:
        span = Span.at_offset(file, text, MAX_LENGTH)
        message = f"AIR is {len(text)} characters long; at most {MAX_LENGTH} allowed"
        raise MircError([Diagnostic.error("air-too-long", message, span)])
    tree = parse_or_raise("air", text, file, AIR_ERRORS, "air-syntax", "AIR", AIR_CHAR_ERRORS)
    fields = {str(c.data): str(c.children[0]) for c in tree.children if isinstance(c, Tree)}
    return Air(
        fields["ecosystem"],
        fields["type"],
        fields["source"],
        fields["id"],
        fields.get("version"),
        fields.get("file"),
        fields.get("format"),
    )


@dataclass(frozen=True, slots=True)
class Family:
    """The MIR series an AIR ecosystem stands for, and its variant inside that series."""

    arch: str
    series: str
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """What an AIR type is: the family itself (``arch`` None) or an add-on of that architecture."""

    arch: str | None


@dataclass(frozen=True)
class Crosswalk:
    """The AIR → MIR crosswalk: families per ecosystem, kinds per type, and known gaps."""

    domain: str
    ecosystems: Mapping[str, Family]
    types: Mapping[str, ResourceKind]
    unmapped_ecosystems: Mapping[str, str]
    unmapped_types: Mapping[str, str]

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any]) -> Crosswalk:
        kinds = {
            name: ResourceKind(body.get("arch") if body["is"] == "addon" else None)
            for name, body in document["types"].items()
        }
        return cls(
            document["domain"],
            {name: Family(**body) for name, body in document["ecosystems"].items()},
            kinds,
            dict(document.get("unmapped_ecosystems", {})),
            dict(document.get("unmapped_types", {})),
        )


@functools.cache
def load_crosswalk() -> Crosswalk:
    """The crosswalk shipped beside this module (trusted package data, so ``safe_load``)."""
    text = resources.files("compiler.lang").joinpath("air_crosswalk.yaml").read_text("utf-8")
    return Crosswalk.from_mapping(yaml.safe_load(text))


@dataclass(frozen=True, slots=True)
class AirConversion:
    """An AIR's MIR id, or None with the warning that says why there is none."""

    mir: MirId | None
    diagnostics: tuple[Diagnostic, ...] = ()


def air_to_mir(air: Air, text: str | None = None, file: str = "<arg>") -> AirConversion:
    """The MIR id of ``air`` by the crosswalk; ``text`` (the AIR as written) positions warnings."""
    crosswalk = load_crosswalk()
    source = text if text is not None else str(air)
    eco_at = _ecosystem_offset(source)
    type_at = eco_at + len(air.ecosystem) + 1
    family = crosswalk.ecosystems.get(air.ecosystem)
    kind = crosswalk.types.get(air.type)
    if family is None:
        span = Span.at_offset(file, source, eco_at, eco_at + len(air.ecosystem))
        gaps, known = crosswalk.unmapped_ecosystems, crosswalk.ecosystems
        return _unmapped("ecosystem", air.ecosystem, gaps, known, span)
    if kind is None:
        span = Span.at_offset(file, source, type_at, type_at + len(air.type))
        return _unmapped("type", air.type, crosswalk.unmapped_types, crosswalk.types, span)
    if kind.arch is None:
        mir_text = f"{crosswalk.domain}.{family.arch}.{family.series}"
        if family.variant is not None:
            mir_text += f":{family.variant}"
    else:
        mir_text = f"{crosswalk.domain}.{kind.arch}.{addon_series(air)}:{family.series}"
    try:
        return AirConversion(parse_mir(mir_text, file))
    except MircError:
        span = Span.at_offset(file, source, 0, len(source))
        message = f"no MIR id for {air}: it would be longer than the MIR limit"
        return AirConversion(None, (Diagnostic.warning("air-unmapped", message, span),))


def addon_series(air: Air) -> str:
    """The series naming an add-on resource: ``SOURCE-ID`` in MIR spelling (``civitai-328553``)."""
    return re.sub(r"[^a-z0-9]+", "-", f"{air.source}-{air.id}".lower()).strip("-")


def _ecosystem_offset(text: str) -> int:
    offset = 4 if text.startswith("urn:") else 0
    return offset + 4 if text.startswith("air:", offset) else offset


def _unmapped(
    what: str, name: str, gaps: Mapping[str, str], known: Mapping[str, object], span: Span
) -> AirConversion:
    message = f"no MIR id for AIR {what} {name!r}"
    if name in gaps:
        notes: tuple[str, ...] = (gaps[name],)
    else:
        notes = (*did_you_mean(name, known), f"the crosswalk maps: {', '.join(sorted(known))}")
    return AirConversion(None, (Diagnostic.warning("air-unmapped", message, span, notes),))
