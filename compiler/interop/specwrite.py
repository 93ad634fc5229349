"""The canonical spec writer: spec documents (plain values) → YAML text, byte-stable.

The output reads back as the same values under the hardened loader (:mod:`compiler.yamlfile`)
and under a YAML 1.1 reader such as PyYAML's ``safe_load``:

- the first line names the JSON Schema for editors (``# yaml-language-server: $schema=…``);
- keys of the records the schemas define come in a fixed order (:data:`DOCUMENT` and the
  shapes below it, which follow each schema's ``properties``), unknown keys after them, sorted;
  mappings that hold data (variants, generation arguments, components …) keep their order;
- lists of numbers, and of short strings, that fit on the line (shapes, dtypes) are written in
  flow style, ``[320, 4, 3, 3]``; other lists (hashes, mappings) one item a line;
- a string is written plain only when both readers resolve it to the same string, and it stays
  on one line; otherwise it is double-quoted with escapes (``"no"``, ``"2021-01-01"``,
  ``"0123"``, ``"1e5"``, ``"null"``, ``"a: b"``, ``"x #y"`` …);
- floats keep a decimal point so that YAML 1.1 reads them as floats too (``1.0e-05``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.yamlfile import resolve_plain

WIDTH = 100
FLOW_STRING = 32  # longer strings (hashes, descriptions) make a list one item a line
MAX_KEY = 1000  # YAML limits implicit keys to 1024 characters
_STR_TAG = "tag:yaml.org,2002:str"
_YAML11: Any = yaml.resolver.Resolver()  # PyYAML's YAML 1.1 implicit resolution

# Plain strings: ASCII words joined by spaces and a few punctuation marks; ":" only inside.
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_ ./()+=~@,;:-]*")
_FLOW_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_ ./()+=~@;-]*")
_ESCAPES = {"\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


@dataclass(frozen=True)
class Shape:
    """How to write a value: a record's key order and the shapes of its children.

    ``order`` is empty for a mapping that holds data: its keys keep their order.
    """

    order: tuple[str, ...] = ()
    children: Mapping[str, Shape] = field(default_factory=dict)
    item: Shape | None = None  # the shape of every value of a data mapping or item of a list

    def child(self, key: str) -> Shape:
        if self.item is not None:
            return self.item
        return self.children.get(key, DATA)


DATA = Shape()


def _list_of(item: Shape) -> Shape:
    return Shape(item=item)


UPSTREAM = Shape(("key", "compat"))
FILE_HASH = Shape(("sha256", "generation"))
HASHES = Shape(("file_256", "layer_256"), {"file_256": _list_of(FILE_HASH)})
BACKEND = Shape(
    (
        "package",
        "class",
        "args",
        "generation",
        "precision",
        "scheduler",
        "scheduler_args",
        "extra",
    )
)
FINGERPRINT = Shape(
    (
        "format",
        "component",
        "required",
        "optional",
        "forbidden",
        "tensors",
        "parameters",
        "blocks",
        "components",
    )
)
DIMENSIONS = Shape(
    (
        "hidden_size",
        "layers",
        "heads",
        "latent_channels",
        "patch_size",
        "vae_scale_factor",
        "max_sequence_length",
    )
)
LORA = Shape(("rank", "alpha", "dropout", "target_modules"))
LAYER_RULE = Shape(("match", "block", "lr_scale", "freeze"))
TRAINING = Shape(
    (
        "descriptor",
        "methods",
        "resolution",
        "batch_size",
        "learning_rate",
        "optimizer",
        "lr_schedule",
        "warmup_steps",
        "epochs",
        "max_steps",
        "mixed_precision",
        "noise_offset",
        "caption_dropout",
        "lora",
        "layers",
    ),
    {"lora": LORA, "layers": _list_of(LAYER_RULE)},
)
VARIANT = Shape(
    (
        "name",
        "description",
        "repo",
        "backends",
        "dtype",
        "denoiser",
        "components",
        "base_model",
        "objective",
        "parameters",
        "dimensions",
        "hashes",
        "fingerprints",
        "training",
        "license",
        "upstream",
    ),
    {
        "backends": _list_of(BACKEND),
        "dimensions": DIMENSIONS,
        "hashes": HASHES,
        "fingerprints": _list_of(FINGERPRINT),
        "training": TRAINING,
        "upstream": UPSTREAM,
    },
)
DOCUMENT = Shape(
    ("spec_version", "kind", "id", "name", "description", "links", "variants"),
    {"variants": Shape(item=VARIANT)},
)


def write_spec(document: Mapping[str, Any], schema_ref: str) -> str:
    """The canonical YAML text of a spec ``document`` whose schema is at ``schema_ref``
    (relative to the file); raises ``ValueError`` for values YAML specs cannot hold."""
    lines = [f"# yaml-language-server: $schema={schema_ref}"]
    if document:
        _mapping(document, DOCUMENT, 0, lines)
    else:
        lines.append("{}")
    return "\n".join(lines) + "\n"


def schema_ref(rel_path: str, kind: str) -> str:
    """The ``$schema`` reference of a spec at ``rel_path`` (inside the spec folder)."""
    depth = rel_path.count("/")
    return "../" * depth + f"schema/{kind}.schema.json"


def ordered_keys(mapping: Mapping[str, Any], shape: Shape) -> list[str]:
    """Known keys in the shape's order, then the others sorted; data mappings keep theirs."""
    if not shape.order:
        return list(mapping)
    known = [key for key in shape.order if key in mapping]
    return known + sorted(key for key in mapping if key not in shape.order)


def _mapping(mapping: Mapping[str, Any], shape: Shape, indent: int, out: list[str]) -> None:
    for key in ordered_keys(mapping, shape):
        if not isinstance(key, str):
            raise ValueError(f"mapping key {key!r} is not a string")
        if len(key) > MAX_KEY:
            raise ValueError(f"mapping key of {len(key)} characters; at most {MAX_KEY}")
        prefix = " " * indent + scalar_text(key) + ":"
        _value(prefix, mapping[key], shape.child(key), indent, out)


def _value(prefix: str, value: Any, shape: Shape, indent: int, out: list[str]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append(prefix + " {}")
            return
        out.append(prefix)
        _mapping(value, shape, indent + 2, out)
    elif isinstance(value, list | tuple):
        flow = _flow(value)
        if flow is not None and len(prefix) + 1 + len(flow) <= WIDTH:
            out.append(f"{prefix} {flow}")
            return
        out.append(prefix)
        _sequence(value, shape.item or DATA, indent + 2, out)
    elif isinstance(value, str) and _foldable(value, len(prefix)):
        out.append(f"{prefix} >-")
        out.extend(_fold(value, indent + 2))
    else:
        out.append(f"{prefix} {scalar_text(value)}")


# Prose longer than a line is written as a folded block (``>-``), wrapped at spaces: it reads
# back as the same one-line string because it has no newline, no tab, no doubled, leading or
# trailing space (which folding would change).
_FOLDABLE = re.compile(r"[^\s](?:[^\s]| (?! ))*")


def _foldable(text: str, prefix: int) -> bool:
    return (
        prefix + 1 + len(text) > WIDTH
        and _FOLDABLE.fullmatch(text) is not None
        and text.isprintable()
        and all(len(word) < WIDTH - 20 for word in text.split(" "))
    )


def _fold(text: str, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(pad) + len(current) + 1 + len(word) > WIDTH:
            lines.append(pad + current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(pad + current)
    return lines


def _sequence(items: Sequence[Any], shape: Shape, indent: int, out: list[str]) -> None:
    dash = " " * indent + "-"
    for item in items:
        if isinstance(item, Mapping) and item:
            lines: list[str] = []
            _mapping(item, shape, indent + 2, lines)
            lines[0] = f"{dash} {lines[0][indent + 2 :]}"
            out.extend(lines)
        else:
            _value(dash, item, shape, indent, out)


def _flow(items: Sequence[Any]) -> str | None:
    """``[a, b]`` when every item is a number, a literal or a short string."""
    parts = []
    for item in items:
        if isinstance(item, Mapping | list | tuple):
            return None
        if isinstance(item, str) and len(item) > FLOW_STRING:
            return None
        parts.append(scalar_text(item, flow=True))
    return "[" + ", ".join(parts) + "]"


def scalar_text(value: Any, flow: bool = False) -> str:
    """How a scalar is written: plain when it reads back as itself, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        return value if _plain_ok(value, flow) else quote(value)
    raise ValueError(f"cannot write a {type(value).__name__} in a spec: {value!r}")


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"spec numbers must be finite, not {value!r}")
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


def _plain_ok(text: str, flow: bool) -> bool:
    pattern = _FLOW_PLAIN if flow else _PLAIN
    if not pattern.fullmatch(text) or text.endswith((" ", ":")) or ": " in text:
        return False
    try:
        if resolve_plain(text) != text:
            return False
    except ValueError:
        return False
    return bool(_YAML11.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG)


def quote(text: str) -> str:
    """``text`` as a YAML double-quoted scalar; raises ``ValueError`` for lone surrogates."""
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"lone surrogate U+{code:04X} cannot be written as UTF-8")
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD:
        return ch if code not in (0x2028, 0x2029, 0xFEFF) else f"\\u{code:04X}"
    if code >= 0x10000:
        return ch
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}"
