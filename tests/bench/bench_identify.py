"""Files per second through the whole ``identify`` (strict header read, matching against the
registry's fingerprints, dtype breakdown, layout hashes) against
``safetensors.safe_open(path, "pt").keys()`` on the same files, per kind of file and overall, and
once more without the two layout hashes (what reading and matching alone cost), with the memo of
tables and without.

The folder is ``collection``'s 1,000 sparse files: SD1.5 single-file checkpoints, SD1.5 and SDXL
kohya LoRAs with sd-scripts' metadata, and textual-inversion embeddings (which no fingerprint
names, so they come out unknown with their nearest candidates looked for). Before timing, each
checkpoint and LoRA must identify as its MIR id. The registry is loaded once, before the clock
starts, as ``mirc identify`` does once per run. One process; best of several interleaved rounds.

Each round is like one run: mirc's memos start empty, and a file whose tensor entries repeat
those of a file read before in the round (same layout, dtype and LoRA rank) takes that file's
table and layout hashes. The collection repeats layouts a lot (the report says how many each
kind has), likely more than a real folder does; the line "each as if its layout were new" empties
the memo of tables before every file: the floor for a folder with no repeats.

    PYTHONPATH=$PWD python3 -c 'from tests.bench.bench_identify import run; print(*run())'
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from compiler.identify import Pool, candidates, identify_file
from compiler.registry import check_registry
from compiler.tensorfile import canonical, read_header
from tests.bench.collection import SDXL_LORAS, best_times, unremembered, write_collection
from tests.conftest import ROOT

ROUNDS = 5
SD1 = "mir:info.unet.stable-diffusion-v1"
LORA_SD1 = "mir:info.lora.lora:stable-diffusion-v1"
LORA_SDXL = "mir:info.lora.lora:stable-diffusion-xl"


def run() -> list[str]:
    """Build the folder, time both on it, and return the report lines."""
    linked = check_registry(Path(ROOT, "spec")).linked
    assert linked is not None
    pool = candidates(linked)

    def identify(path: Path) -> object:
        return identify_file(path, pool)

    def bare(path: Path) -> object:
        return identify_file(path, pool, layout_hashes=False)

    with tempfile.TemporaryDirectory(prefix="mirc-bench-identify-") as folder:
        groups = write_collection(Path(folder))
        lines = [f"{len(pool)} registry fingerprints", _identified(groups, pool), _layouts(groups)]
        totals = [0.0, 0.0]
        for kind, paths in groups.items():
            mine, theirs = best_times(paths, identify, ROUNDS)
            totals = [totals[0] + mine, totals[1] + theirs]
            lines.append(_line(kind + "s", len(paths), mine, theirs))
        count = sum(len(paths) for paths in groups.values())
        lines.append(_line("all files", count, *totals) + " (target 2.00×)")
        every = [path for paths in groups.values() for path in paths]
        mine, theirs = best_times(every, unremembered(identify), ROUNDS)
        lines.append(_line("all files, each as if its layout were new", count, mine, theirs))
        mine, theirs = best_times(every, bare, ROUNDS)
        lines.append(_line("all files, without the layout hashes", count, mine, theirs))
        mine, theirs = best_times(every, unremembered(bare), ROUNDS)
        label = "all files, each as if its layout were new, without the layout hashes"
        lines.append(_line(label, count, mine, theirs))
    return lines


def _identified(groups: dict[str, list[Path]], pool: Pool) -> str:
    """How many files of each kind identify, after checking each checkpoint and LoRA gets its id."""
    expected = {path: {SD1} for path in groups["checkpoint"]}
    for index, path in enumerate(groups["lora"]):
        expected[path] = {LORA_SDXL if index < SDXL_LORAS else LORA_SD1}
    known = dict.fromkeys(groups, 0)
    for kind, paths in groups.items():
        for path in paths:
            report = identify_file(path, pool)
            ids = {s.candidate.mir for f in report.components for s in (f.best, *f.ties)}
            assert expected.get(path, set()) <= ids, (path, ids)
            known[kind] += report.known
    counts = (f"{known[kind]}/{len(paths)} {kind}s" for kind, paths in groups.items())
    return "identified: " + ", ".join(counts)


def _layouts(groups: dict[str, list[Path]]) -> str:
    """How many distinct layouts (tensor entries) each kind has: one table each in a run."""
    canonical.forget()
    counts = (
        f"{len({id(read_header(p).tensors) for p in paths})} of {len(paths)} {kind}s"
        for kind, paths in groups.items()
    )
    return "distinct layouts: " + ", ".join(counts)


def _line(label: str, count: int, mine: float, theirs: float) -> str:
    return (
        f"{label}: mirc identify {count / mine:,.0f} files/s, safe_open keys "
        f"{count / theirs:,.0f} headers/s, identify/safe_open {theirs / mine:.2f}×"
    )
