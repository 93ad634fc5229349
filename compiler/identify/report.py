"""What ``mirc identify`` says about one file: components, prediction type, size, hashes.

Everything here comes from the header alone, except the content hash, which reads every tensor
byte and so is computed only when asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby

from compiler.identify.match import Finding, Score, findings, nearest, score_all
from compiler.identify.pool import Pool
from compiler.identify.prefixes import EXTRA_PREFIXES, MARKER_KEYS, KeyIndex, views
from compiler.tensorfile import (
    DTYPE_BITS,
    SafetensorsHeader,
    TensorTable,
    data_digest,
    layout_digests,
    table_digests,
)

# Metadata keys that name the prediction type, as trainers write them.
PREDICTION_METADATA = ("modelspec.prediction_type", "modelspec.predict_key")
_V_NAMES = frozenset({"v", "v_prediction", "v-prediction", "vpred", "v_pred"})


@dataclass(frozen=True)
class Prediction:
    """What the network predicts (``epsilon``, ``v_prediction`` …), whether it was trained with
    zero terminal SNR, and where each was read from."""

    kind: str | None
    ztsnr: bool
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class DtypeShare:
    dtype: str
    tensors: int
    parameters: int


@dataclass(frozen=True)
class Hashes:
    layout: str | None  # sorted names with shapes: the same for fp16, bf16 and fp8 copies
    layout_dtype: str | None  # ... and dtypes (both None when not asked for)
    content: str | None  # sha256 of the tensor bytes; only with --hash


@dataclass(frozen=True)
class FileReport:
    """One identified (or unknown) safetensors file."""

    path: str
    tensors: int
    parameters: int
    dtypes: tuple[DtypeShare, ...]
    components: tuple[Finding, ...]
    nearest: tuple[Score, ...]  # for an unknown file: the candidates that came closest
    prediction: Prediction
    hashes: Hashes
    extra_tensors: int  # tensors beside the model (an EMA copy) that no fingerprint reads

    @property
    def known(self) -> bool:
        return bool(self.components)


def report(
    header: SafetensorsHeader,
    pool: Pool,
    content_hash: bool = False,
    layout_hashes: bool = True,
) -> FileReport:
    """Identify the file whose validated header is ``header`` against the candidates ``pool``;
    ``layout_hashes`` and ``content_hash`` say which hashes to compute."""
    tensors = header.tensors
    index, shares, (layout, layout_dtype) = _summary(tensors, layout_hashes)
    seen = views(index)
    found = tuple(findings(score_all(pool, tensors, index, found=seen)))
    near = () if found else tuple(nearest(score_all(pool, tensors, index, full=True, found=seen)))
    return FileReport(
        header.path,
        len(tensors),
        sum(share.parameters for share in shares),
        shares,
        found,
        near,
        prediction(header.metadata, tensors),
        Hashes(layout, layout_dtype, data_digest(header) if content_hash else None),
        sum(index.under(prefix) for prefix in EXTRA_PREFIXES),
    )


def _summary(
    tensors: TensorTable, layout_hashes: bool
) -> tuple[KeyIndex, tuple[DtypeShare, ...], tuple[str | None, str | None]]:
    """The names to match, the dtype breakdown and the layout hashes, without marker keys.

    A file without markers (nearly all) is summed up from the table's columns."""
    if MARKER_KEYS.isdisjoint(tensors.name_set):
        index = KeyIndex(tensors.sorted_names(), tensors.name_set)
        hashes = table_digests(tensors) if layout_hashes else (None, None)
        return index, _table_shares(tensors), hashes
    rows = [row for row in tensors.rows() if row[0] not in MARKER_KEYS]
    index = KeyIndex.of(row[0] for row in rows)
    return index, _dtype_shares(rows), layout_digests(rows) if layout_hashes else (None, None)


def _table_shares(tensors: TensorTable) -> tuple[DtypeShare, ...]:
    """The dtype breakdown from the columns, a run of one dtype at a time: the serializer
    writes the tensors of each dtype together, so a file has a run or two."""
    dtypes, ends = tensors.dtypes, tensors.ends
    if tensors.sole_dtype is not None:  # one dtype: the whole data region
        return (_share(tensors.sole_dtype, len(dtypes), ends[-1]),)
    nbytes: dict[str, int] = {}
    counts: Counter[str] = Counter()
    start = 0
    for dtype, run in groupby(dtypes):
        end = start + len(list(run))
        nbytes[dtype] = nbytes.get(dtype, 0) + ends[end] - ends[start]
        counts[dtype] += end - start
        start = end
    shares = (_share(dtype, count, nbytes[dtype]) for dtype, count in counts.items())
    return tuple(sorted(shares, key=_share_order))


def _dtype_shares(rows: list[tuple[str, str, tuple[int, ...], int]]) -> tuple[DtypeShare, ...]:
    nbytes: dict[str, int] = {}
    counts: Counter[str] = Counter()
    for _, dtype, _, size in rows:
        nbytes[dtype] = nbytes.get(dtype, 0) + size
        counts[dtype] += 1
    shares = (_share(dtype, count, nbytes[dtype]) for dtype, count in counts.items())
    return tuple(sorted(shares, key=_share_order))


def _share(dtype: str, tensors: int, nbytes: int) -> DtypeShare:
    return DtypeShare(dtype, tensors, nbytes * 8 // DTYPE_BITS[dtype])


def _share_order(share: DtypeShare) -> tuple[int, str]:
    return (-share.parameters, share.dtype)


def prediction(metadata: Mapping[str, str], tensors: Mapping[str, object]) -> Prediction:
    """The prediction type from the metadata trainers write, else from marker keys."""
    evidence = []
    kind = None
    for key in PREDICTION_METADATA:
        if key in metadata:
            value = metadata[key].strip().lower()
            kind = "v_prediction" if value in _V_NAMES else value
            evidence.append(f"metadata {key}={metadata[key]!r}")
            break
    if kind is None and "v_pred" in tensors:
        kind = "v_prediction"
        evidence.append("marker key v_pred")
    ztsnr = "ztsnr" in tensors
    if ztsnr:
        evidence.append("marker key ztsnr")
    return Prediction(kind, ztsnr, tuple(evidence))


def score_json(s: Score) -> dict[str, object]:
    """A score as ``--json`` prints it."""
    fingerprint = s.candidate.fingerprint
    return {
        "mir": s.candidate.mir,
        "format": fingerprint.format,
        "component": s.candidate.label,
        "confidence": s.confidence,
        "prefix": s.view,
        "dropped_prefix": s.drop,
        "matched": list(s.matched),
        "missing": list(s.missing),
        "other_shape": list(s.reshaped),
        "forbidden_present": list(s.forbidden),
    }


def report_json(file: FileReport) -> dict[str, object]:
    """A file's report as ``--json`` prints it."""
    return {
        "path": file.path,
        "known": file.known,
        "components": [
            {**score_json(f.best), "ties": [score_json(t) for t in f.ties]} for f in file.components
        ],
        "nearest": [score_json(s) for s in file.nearest],
        "tensors": file.tensors,
        "parameters": file.parameters,
        "extra_tensors": file.extra_tensors,
        "dtypes": {
            d.dtype: {"tensors": d.tensors, "parameters": d.parameters} for d in file.dtypes
        },
        "prediction": {
            "type": file.prediction.kind,
            "ztsnr": file.prediction.ztsnr,
            "evidence": list(file.prediction.evidence),
        },
        "hashes": {
            "layout": file.hashes.layout,
            "layout_dtype": file.hashes.layout_dtype,
            "content": file.hashes.content,
        },
    }
