"""Safetensors files read as strictly as the format's own reader, and pickles refused unopened.

``read_header`` validates a header without reading tensor data; ``sniff`` tells formats apart by
their first bytes; ``data_digest`` and ``layout_digest`` hash a file's bytes or its layout;
``write_sparse`` writes header-only test files. See ``header.py`` for the rules.
"""

from compiler.tensorfile.digest import (
    data_digest,
    layout_digest,
    layout_digest_of,
    layout_digests,
    table_digests,
)
from compiler.tensorfile.header import parse_header, read_header
from compiler.tensorfile.model import (
    DTYPE_BITS,
    MAX_HEADER_LENGTH,
    SafetensorsHeader,
    ShapeInfo,
    TensorInfo,
    TensorTable,
)
from compiler.tensorfile.sniff import FileFormat, sniff
from compiler.tensorfile.sparse import write_sparse

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_LENGTH",
    "FileFormat",
    "SafetensorsHeader",
    "ShapeInfo",
    "TensorInfo",
    "TensorTable",
    "data_digest",
    "layout_digest",
    "layout_digest_of",
    "layout_digests",
    "parse_header",
    "read_header",
    "sniff",
    "table_digests",
    "write_sparse",
]
