"""Finding the file a ``model "mir:…"`` line names, from headers alone.

In order: a file in ``--model-dir`` named after the id's last name (``stable-diffusion-v1``
→ ``stable-diffusion-v1.safetensors``), the shortcut mirc always had; then identification: every
``*.safetensors`` file under ``--model-dir`` (searched recursively) and in the recipe's own folder
(not below it) is identified from its header (``mirc identify``'s fingerprint matching), and the
one file that identifies as the id is taken. None is refused naming the nearest files found;
several are refused listing them (the model line should name the file instead). A file found by
name that identifies as other ids, and not this one, is refused too. The merge's own output is
never a candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.ir import BASE
from compiler.lang.mir import MirId, parse_mir
from compiler.tensorfile import SafetensorsHeader, read_header

SUFFIX = ".safetensors"
NEAREST = 3

# The MIR ids a header identifies as (every component's best match and its ties).
Identifier = Callable[[SafetensorsHeader], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Identified:
    """A candidate file: its header (``None`` if unreadable) and the ids it identifies as."""

    path: Path
    header: SafetensorsHeader | None
    ids: tuple[MirId, ...]


class MirFiles:
    """Finds the files of MIR ids; the folders are scanned and identified once, when first
    needed."""

    def __init__(
        self,
        recipe_dir: Path,
        model_dir: Path | None,
        identify: Identifier | None,
        exclude: Iterable[Path] = (),
    ) -> None:
        self.recipe_dir = recipe_dir
        self.model_dir = model_dir
        self.identify = identify
        self.exclude = {_real(path) for path in exclude}
        self._scanned: list[Identified] | None = None

    def find(self, text: str, span: Span) -> SafetensorsHeader:
        """The header of the one file that ``text`` (a MIR id) names; problems raise."""
        wanted = _canonical(parse_mir(text, span.file))
        named = self._named(text)
        if named is not None:
            return self._confirmed(named, wanted, span)
        if self.identify is None:
            where = f" in {self.model_dir}" if self.model_dir is not None else ""
            message = f"cannot find the model '{text}'{where}"
            note = f"give --model-dir DIR holding {_last_name(text)}{SUFFIX}"
            raise MircError([Diagnostic.error("merge-input", message, span, (note,))])
        found = [f for f in self._scan() if wanted in f.ids]
        if len(found) == 1 and found[0].header is not None:
            return found[0].header
        raise MircError([self._refusal(wanted, found, span)])

    def _named(self, text: str) -> Path | None:
        """``--model-dir``/NAME.safetensors, NAME the id's last name (its variant if it has one)."""
        if self.model_dir is None:
            return None
        path = self.model_dir / f"{_last_name(text)}{SUFFIX}"
        return path if path.is_file() and _real(path) not in self.exclude else None

    def _confirmed(self, path: Path, wanted: MirId, span: Span) -> SafetensorsHeader:
        """A file found by name, unless identification says it is something else."""
        header = read_header(path)
        ids = self._ids(header)
        if ids and wanted not in ids:
            message = (
                f"{path} is named after {wanted} but identifies as {_listed(ids)}; "
                "rename it, or name the file in the model line"
            )
            raise MircError([Diagnostic.error("merge-input", message, span)])
        return header

    def _ids(self, header: SafetensorsHeader) -> tuple[MirId, ...]:
        if self.identify is None:
            return ()
        return tuple(dict.fromkeys(_canonical(parse_mir(i)) for i in self.identify(header)))

    def _folders(self) -> list[tuple[Path, bool]]:
        """The folders searched, each with whether it is searched recursively."""
        folders = [(self.model_dir, True)] if self.model_dir is not None else []
        return [*folders, (self.recipe_dir, False)]

    def _scan(self) -> list[Identified]:
        if self._scanned is None:
            paths: dict[Path, Path] = {}
            for folder, deep in self._folders():
                found = folder.rglob("*" + SUFFIX) if deep else folder.glob("*" + SUFFIX)
                for path in sorted(p for p in found if p.is_file()):
                    paths.setdefault(_real(path), path)
            self._scanned = [
                self._identified(path) for real, path in paths.items() if real not in self.exclude
            ]
        return self._scanned

    def _identified(self, path: Path) -> Identified:
        try:
            header = read_header(path)
        except MircError:
            return Identified(path, None, ())
        return Identified(path, header, self._ids(header))

    def _refusal(self, wanted: MirId, found: list[Identified], span: Span) -> Diagnostic:
        if found:
            message = f"{len(found)} files identify as {wanted}: " + ", ".join(
                str(f.path) for f in found
            )
            note = f'name one in the model line instead, e.g. model "{found[0].path}"'
            return Diagnostic.error("merge-input", message, span, (note,))
        folders = " and ".join(str(folder) for folder, _ in self._folders())
        scanned = self._scan()
        message = f"no file in {folders} identifies as {wanted}"
        if not scanned:
            message += f" (there are no {SUFFIX} files)"
        notes = [_nearest(wanted, scanned)] if scanned else []
        notes.append("name the file in the model line, or give --model-dir DIR holding it")
        return Diagnostic.error("merge-input", message, span, notes)


def _nearest(wanted: MirId, scanned: Sequence[Identified]) -> str:
    ranked = sorted(scanned, key=lambda f: (-_closeness(wanted, f), str(f.path)))
    return "nearest: " + "; ".join(
        f"{f.path} ({_listed(f.ids) if f.ids else _unknown(f)})" for f in ranked[:NEAREST]
    )


def _closeness(wanted: MirId, file: Identified) -> int:
    """3: the same series (another variant), 2: the same architecture, 1: the same domain."""
    best = -1
    for found in file.ids:
        same = (found.domain == wanted.domain, found.arch == wanted.arch)
        score = sum(same) + (all(same) and found.series == wanted.series)
        best = max(best, score)
    return best


def _unknown(file: Identified) -> str:
    return "not identified" if file.header is not None else "not a readable safetensors file"


def _listed(ids: Sequence[MirId]) -> str:
    return ", ".join(str(i) for i in ids)


def _canonical(mir: MirId) -> MirId:
    """An id as identification reports it: the base variant without ``:base``."""
    return mir._replace(compat=None) if mir.compat == BASE else mir


def _last_name(text: str) -> str:
    return text.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def _real(path: Path) -> Path:
    return path.resolve()
