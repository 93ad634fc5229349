"""mir.json entries → spec documents, normalised by the rules of ``normalisation.yaml``.

One upstream key ``DOMAIN.ARCH.SERIES`` becomes one :class:`ImportedSeries` (a spec file); each
compatibility entry becomes a variant with ``repo``, ``backends`` (from ``pkg``), ``hashes`` and
``upstream`` (the original key and compatibility, so that export can restore them). Every place
a rule applies is recorded as a :class:`~compiler.interop.table.Change`; input no rule covers is
rejected with a diagnostic positioned in mir.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compiler.diagnostics import Diagnostic, DiagnosticSink, MircError, did_you_mean
from compiler.interop.files import spec_rel_path
from compiler.interop.jsonfile import JsonDocument
from compiler.interop.references import (
    STAR,
    SeriesKey,
    mir_name,
    resolve_reference,
    variant_name,
)
from compiler.interop.table import Change, UpstreamPath
from compiler.ir import BASE
from compiler.lang.mir import MirId
from compiler.taxonomy import Taxonomy

ENTRY_FIELDS = ("repo", "pkg", "file_256", "layer_256")
HASH_FIELDS = ("file_256", "layer_256")
SETTINGS = ("generation", "gen_kwargs", "precision", "scheduler")


@dataclass
class ImportedSeries:
    """One upstream key as a spec: where it goes and what import writes into it."""

    key: str
    rel: str  # models/ARCH/SERIES.yaml or ops/ARCH/SERIES.yaml
    kind: str  # "series" or "ops"
    id: str
    variants: dict[str, dict[str, Any]]

    def document(self) -> dict[str, Any]:
        """The spec document of a new file."""
        return {"spec_version": 1, "kind": self.kind, "id": self.id, "variants": self.variants}


class Converter:
    """Converts the entries of one mir.json, collecting changes and diagnostics."""

    def __init__(
        self, source: JsonDocument, taxonomy: Taxonomy, index: Mapping[SeriesKey, list[str]]
    ) -> None:
        self.source = source
        self.taxonomy = taxonomy
        self.index = index
        self.changes: list[Change] = []
        self.sink = DiagnosticSink()

    def convert(self, key: str, body: Any) -> ImportedSeries | None:
        """The series of upstream ``key``; None (with diagnostics) when it cannot be imported."""
        try:
            return self._series(key, body)
        except MircError as exc:
            self.sink.extend(exc.diagnostics)
            return None

    def _fail(self, path: UpstreamPath, message: str, key: bool = False) -> MircError:
        span = self.source.span(path, key=key)
        return MircError([Diagnostic.error("import", message, span)])

    def _change(self, rule: str, path: UpstreamPath, before: Any, after: Any) -> None:
        self.changes.append(Change(rule, path, str(before), str(after)))

    def _series(self, key: str, body: Any) -> ImportedSeries:
        domain, arch, series = self._key_parts(key)
        if not isinstance(body, dict) or not body:
            raise self._fail((key,), f"{key}: expected an object of compatibility entries")
        folder, kind = ("ops", "ops") if domain == "ops" else ("models", "series")
        rel = spec_rel_path(folder, arch, series, self.source.span((key,), key=True))
        variants: dict[str, dict[str, Any]] = {}
        for compat, entry in body.items():
            name = self._variant_name(key, compat)
            variant = self._variant(key, compat, entry)
            if name in variants:
                variant = self._join_star_and_base(key, compat, variants[name], variant)
            variants[name] = variant
        return ImportedSeries(key, rel, kind, f"mir:{domain}.{arch}.{series}", variants)

    def _key_parts(self, key: str) -> tuple[str, str, str]:
        parts = key.split(".", 2)
        if len(parts) != 3:
            raise self._fail((key,), f"{key!r} is not a MIR key DOMAIN.ARCH.SERIES", key=True)
        domain, arch, series = parts
        if domain not in self.taxonomy.domains:
            notes = did_you_mean(domain, self.taxonomy.domains)
            span = self.source.span((key,), key=True)
            raise MircError([Diagnostic.error("import", f"unknown domain {domain!r}", span, notes)])
        canonical = self.taxonomy.canonical_arch(arch)
        if canonical is None:
            span = self.source.span((key,), key=True)
            raise MircError(self.taxonomy.check(MirId(domain, arch, series), span))
        if canonical != arch:
            self._change("arch-alias", (key,), arch, canonical)
        name = mir_name(series)
        if name != series:
            self._change("series-name", (key,), series, name)
        return domain, canonical, name

    def _variant_name(self, key: str, compat: str) -> str:
        name = variant_name(compat)
        if compat == STAR:
            self._change("compat-star", (key, compat), compat, name)
        elif name != compat:
            self._change("compat-name", (key, compat), compat, name)
        return name

    def _variant(self, key: str, compat: str, entry: Any) -> dict[str, Any]:
        path = (key, compat)
        if not isinstance(entry, dict):
            raise self._fail(path, f"{key} {compat!r}: expected an object (repo, pkg, file_256 …)")
        for field in entry:
            if field not in ENTRY_FIELDS:
                allowed = ", ".join(ENTRY_FIELDS)
                message = f"unknown upstream field {field!r}; mirc imports {allowed}"
                raise self._fail((*path, field), message, key=True)
        variant: dict[str, Any] = {}
        if "repo" in entry:
            variant["repo"] = self._string(entry["repo"], (*path, "repo"))
        pkg_hashes: dict[str, list[Any]] = {}
        if "pkg" in entry:
            backends, pkg_hashes = self._pkg(entry["pkg"], (*path, "pkg"))
            variant["backends"] = backends
        hashes = self._hashes(entry, pkg_hashes, path)
        if hashes:
            variant["hashes"] = hashes
        variant["upstream"] = {"key": key, "compat": compat}
        return variant

    def _string(self, value: Any, path: UpstreamPath) -> str:
        if not isinstance(value, str):
            raise self._fail(path, f"expected a string, found {type(value).__name__}")
        return value

    def _pkg(
        self, pkg: Any, path: UpstreamPath
    ) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
        if not isinstance(pkg, dict):
            raise self._fail(path, "pkg must be an object of backends keyed 0, 1, …")
        numbered: list[tuple[int, str]] = []
        hashes: dict[str, list[Any]] = {}
        for index, body in pkg.items():
            if index.isascii() and index.isdigit():
                numbered.append((int(index), index))
            elif index in HASH_FIELDS and isinstance(body, list):
                hashes[index] = body
                self._change("pkg-hashes", path[:2], f"pkg.{index}", f"hashes.{index}")
            else:
                message = f"pkg holds backends keyed 0, 1, …; found {index!r}"
                raise self._fail((*path, index), message, key=True)
        if numbered:
            order = [index for _, index in sorted(numbered)]
            self._change("pkg-index", path, "{" + ", ".join(order) + "}", "backends list")
        return [self._backend(pkg[index], (*path, index)) for _, index in sorted(numbered)], hashes

    def _hashes(
        self, entry: Mapping[str, Any], from_pkg: Mapping[str, list[Any]], path: UpstreamPath
    ) -> dict[str, list[Any]]:
        hashes: dict[str, list[Any]] = {}
        if "file_256" in entry:
            hashes["file_256"] = self._file_hashes(entry["file_256"], (*path, "file_256"))
        if not isinstance(entry.get("layer_256", []), list):
            raise self._fail((*path, "layer_256"), "layer_256 must be a list of SHA-256 hashes")
        layers = list(entry.get("layer_256", []))
        layers.extend(h for h in from_pkg.get("layer_256", ()) if h not in layers)
        if layers:
            hashes["layer_256"] = layers
        if "file_256" in from_pkg:
            hashes.setdefault("file_256", []).extend(from_pkg["file_256"])
        return hashes

    def _file_hashes(self, value: Any, path: UpstreamPath) -> list[Any]:
        if isinstance(value, list):
            return list(value)
        if not isinstance(value, dict):
            raise self._fail(path, "file_256 must be a list of hashes or an object hash → settings")
        self._change("file-hash-settings", path, "{hash: settings}", "[{sha256, generation}]")
        files = []
        for sha, settings in value.items():
            if not isinstance(settings, dict):
                raise self._fail((*path, sha), "the settings of a file hash must be an object")
            files.append({"sha256": sha, "generation": settings} if settings else {"sha256": sha})
        return files

    def _backend(self, body: Any, path: UpstreamPath) -> dict[str, Any]:
        if not isinstance(body, dict) or not body:
            raise self._fail(path, "a backend must be a non-empty object (package: class …)")
        packages = [(k, v) for k, v in body.items() if k not in SETTINGS]
        backend: dict[str, Any] = {}
        if packages:
            backend.update(self._package(*packages[0], path))
            if len(packages) > 1:
                backend["extra"] = dict(packages[1:])
                self._change("extra-package", path, packages[1][0], "extra")
        else:
            self._change("settings-only", path, "no package", "settings-only backend")
        self._generation(body, backend, path)
        for field in ("precision", "scheduler"):
            if field in body:
                self._reference(field, body[field], backend, (*path, field))
        return backend

    def _package(self, raw: str, value: Any, path: UpstreamPath) -> dict[str, Any]:
        package = raw.strip()
        if package != raw:
            self._change("package-space", path, repr(raw), package)
        args: Any = None
        if isinstance(value, dict) and len(value) == 1:
            [(class_path, args)] = value.items()
            if not isinstance(args, dict):
                raise self._fail((*path, raw, class_path), "class arguments must be an object")
            self._change("package-args", path, f"{raw}: {{{class_path}: …}}", "package/class/args")
        elif isinstance(value, str):
            class_path = value
        else:
            message = f"{raw!r} must name a class, or map one class to its arguments"
            raise self._fail((*path, raw), message)
        module, _, class_name = class_path.rpartition(".")
        if module:
            self._change("dotted-class", path, f"{raw}: {class_path}", f"{package}.{module}")
            package = f"{package}.{module}"
        backend: dict[str, Any] = {"package": package, "class": class_name}
        if args is not None:
            backend["args"] = args
        return backend

    def _generation(
        self, body: Mapping[str, Any], backend: dict[str, Any], path: UpstreamPath
    ) -> None:
        if "generation" in body and "gen_kwargs" in body:
            raise self._fail((*path, "gen_kwargs"), "both generation and gen_kwargs", key=True)
        for field in ("generation", "gen_kwargs"):
            if field not in body:
                continue
            if not isinstance(body[field], dict):
                raise self._fail((*path, field), f"{field} must be an object of arguments")
            backend["generation"] = body[field]
            if field == "gen_kwargs":
                self._change("gen-kwargs", path, "gen_kwargs", "generation")

    def _reference(self, field: str, raw: Any, backend: dict[str, Any], path: UpstreamPath) -> None:
        target, args = self._reference_parts(field, raw, path)
        resolved = resolve_reference(target, self.index, self.taxonomy)
        if resolved is None:
            backend.setdefault("extra", {})[field] = raw
            self._change("reference-unresolved", path, target, f"extra.{field}")
            message = f"{field} {target!r} names no entry of the database; kept verbatim in extra"
            keys = [".".join(k) for k in self.index]
            notes = did_you_mean(target, keys)
            self.sink.add(
                Diagnostic.warning("import-unresolved", message, self.source.span(path), notes)
            )
            return
        backend[field] = resolved.mir
        for rule in resolved.rules:
            self._change(rule, path, target, resolved.mir)
        if args is not None:
            backend["scheduler_args"] = args

    def _reference_parts(self, field: str, raw: Any, path: UpstreamPath) -> tuple[str, Any]:
        if isinstance(raw, str):
            return raw, None
        if field == "scheduler" and isinstance(raw, dict) and len(raw) == 1:
            [(target, args)] = raw.items()
            if args == "":
                self._change("scheduler-no-args", path, f'{{{target}: ""}}', target)
                return target, None
            if isinstance(args, dict):
                self._change("scheduler-args", path, f"{{{target}: …}}", "scheduler_args")
                return target, args
        message = f"{field} must be a MIR reference" + (
            " or {reference: arguments}" if field == "scheduler" else ""
        )
        raise self._fail(path, message)

    def _join_star_and_base(
        self, key: str, compat: str, first: dict[str, Any], second: dict[str, Any]
    ) -> dict[str, Any]:
        """``*`` and ``base`` of one key become one variant (rule ``star-and-base``)."""
        star, base = (first, second) if compat == BASE else (second, first)
        if first["upstream"]["compat"] not in (STAR, BASE) or compat not in (STAR, BASE):
            other = first["upstream"]["compat"]
            message = (
                f"compatibility keys {other!r} and {compat!r} both become {variant_name(compat)!r}"
            )
            raise self._fail((key, compat), message, key=True)
        if "repo" in base and "repo" in star and base["repo"] != star["repo"]:
            raise self._fail((key, BASE, "repo"), "'*' and 'base' name different repos")
        self._change("star-and-base", (key,), "'*' and 'base'", "base")
        return join_variants(star, base)


def join_variants(star: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``base``'s backends joined into ``star``'s position by position, its hashes added."""
    joined = dict(star)
    if "repo" in base:
        joined["repo"] = base["repo"]
    backends = [dict(b) for b in star.get("backends", [])]
    for position, backend in enumerate(base.get("backends", [])):
        if position < len(backends) and _same_package(backends[position], backend):
            backends[position] = _join_backend(backends[position], backend)
        else:
            backends.append(backend)
    if backends:
        joined["backends"] = backends
    hashes = {k: list(v) for k, v in star.get("hashes", {}).items()}
    for field, values in base.get("hashes", {}).items():
        hashes.setdefault(field, []).extend(v for v in values if v not in hashes[field])
    if hashes:
        joined["hashes"] = hashes
    joined["upstream"] = star["upstream"]
    return {k: joined[k] for k in ("repo", "backends", "hashes", "upstream") if k in joined}


def _same_package(star: Mapping[str, Any], base: Mapping[str, Any]) -> bool:
    if "package" not in base:
        return True
    return bool(base["package"] == star.get("package") and base.get("class") == star.get("class"))


def _join_backend(star: dict[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    joined = {**star, **base}
    for field in ("generation", "extra"):
        if field in star and field in base:
            joined[field] = {**star[field], **base[field]}
    return joined
