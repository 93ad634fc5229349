"""Which kind of model file a path holds, told from its first bytes; pickles are never opened.

Loading a pickle runs whatever code it names, and the scanners that try to tell safe pickles from
unsafe ones keep being bypassed (RELIABILITY rule 3), so mirc recognises ``.ckpt``/``.pt``/
``.bin`` pickles by their opening bytes and refuses them with a hint on converting them. The zip
archive that ``torch.save`` writes is recognised by listing its members' names, which reads the
archive's directory and nothing inside a member.
"""

from __future__ import annotations

import enum
import os
import zipfile

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.tensorfile.model import LENGTH_PREFIX, MAX_HEADER_LENGTH

SNIFF_LENGTH = 16
_PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_CONVERT_HINT = (
    'to convert it, in an environment where you trust the file, run: python -c "import torch; '
    "from safetensors.torch import save_file; "
    "sd = torch.load('model.ckpt', map_location='cpu', weights_only=True); "
    "sd = sd.get('state_dict', sd); "
    "save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors')\""
)


class FileFormat(enum.Enum):
    """The kinds of model file mirc tells apart."""

    SAFETENSORS = "safetensors"
    PICKLE = "pickle"
    TORCH_ZIP = "torch-zip"  # torch.save's zip archive: a pickle with tensor files beside it
    ZIP = "zip"
    GGUF = "gguf"
    UNKNOWN = "unknown"


def sniff(path: str | os.PathLike[str]) -> FileFormat:
    """The format of the file at ``path``, from its first bytes (and a zip's member names)."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as stream:
            prefix = stream.read(SNIFF_LENGTH)
            size = os.fstat(stream.fileno()).st_size
    except OSError as error:
        span = Span(file)
        raise MircError([Diagnostic.error("io", f"cannot read: {error.strerror}", span)]) from None
    if _looks_like_safetensors(prefix, size):
        return FileFormat.SAFETENSORS
    return classify(prefix, file)


def classify(prefix: bytes, file: str) -> FileFormat:
    """The other format that a file's first bytes announce, or UNKNOWN."""
    if prefix.startswith(b"GGUF"):
        return FileFormat.GGUF
    if prefix.startswith(b"PK\x03\x04"):
        return FileFormat.TORCH_ZIP if _zip_holds_pickle(file) else FileFormat.ZIP
    if prefix[:2] in _PICKLE_PROTOCOLS:
        return FileFormat.PICKLE
    return FileFormat.UNKNOWN


def refusal(file: str, kind: FileFormat) -> Diagnostic:
    """The one-line error (and hint) for a file that is not safetensors."""
    span = Span(file, byte=0)
    if kind in (FileFormat.PICKLE, FileFormat.TORCH_ZIP):
        message = (
            "this is a pickle checkpoint (torch.save); mirc never unpickles a file, "
            "since loading a pickle can run any code"
        )
        return Diagnostic.error("pickle-refused", message, span, [_CONVERT_HINT])
    what = {FileFormat.GGUF: "a GGUF file", FileFormat.ZIP: "a zip archive"}.get(kind, "unknown")
    message = f"this is {what}, not safetensors; mirc reads safetensors files only"
    return Diagnostic.error("unsupported-format", message, span)


def _looks_like_safetensors(prefix: bytes, size: int) -> bool:
    length = int.from_bytes(prefix[:LENGTH_PREFIX], "little")
    fits = len(prefix) > LENGTH_PREFIX and LENGTH_PREFIX + length <= size
    return fits and length <= MAX_HEADER_LENGTH and prefix[LENGTH_PREFIX] in b"{ \t\n\r"


def _zip_holds_pickle(file: str) -> bool:
    try:
        with zipfile.ZipFile(file) as archive:
            return any(name.endswith(".pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
