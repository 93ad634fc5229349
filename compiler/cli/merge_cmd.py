"""``mirc merge RECIPE -o OUT``: execute a Mecha recipe, streaming, into a safetensors file."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli.output import print_json
from compiler.diagnostics import EXIT_OK

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from compiler.lang.mecha.check import MirResolver, ResolvedModel
    from compiler.lang.mir import MirId
    from compiler.link import LinkedRegistry
    from compiler.merge.blocks import BlockFingerprint, FamilyMatcher
    from compiler.merge.engine import MergeOptions, MergeResult
    from compiler.merge.locate import Identifier
    from compiler.tensorfile import SafetensorsHeader

# the engine's choices, spelled here so that parsing the command line does not import torch

OUTPUT_DTYPES = ("fp16", "bf16", "fp32")
MISSING_POLICIES = ("error", "fallback")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="execute a Mecha recipe into a safetensors file",
        description="Merge the recipe's models key by key (never the whole model in memory) "
        "with sd-mecha's merge methods. The recipe and its inputs' headers are checked before "
        "any tensor is read; the output is written to a temporary file and renamed at the end. "
        "The registry's block fingerprints are cached in $MIRC_CACHE_DIR (default "
        "$XDG_CACHE_HOME/mirc, else ~/.cache/mirc).",
    )
    parser.add_argument("recipe", type=Path, metavar="RECIPE", help="a .mecha recipe")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="keys merged at once")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=tuple(OUTPUT_DTYPES), default="fp16")
    parser.add_argument(
        "--model-dir",
        type=Path,
        metavar="DIR",
        help="where models are found; a MIR-id model is the file under DIR (or beside the "
        "recipe) that identifies as it",
    )
    parser.add_argument(
        "--missing",
        choices=MISSING_POLICIES,
        default="error",
        help="a key some input lacks: refuse (default) or take it from an input that has it",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # numpy's OpenBLAS starts a thread per core as numpy loads, which the merge never uses
    # (it multiplies no matrices with numpy): a tenth of a second of CPU saved
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # imported here: the merge engines import numpy or torch for some recipes, which parsing the
    # command line never needs
    from compiler.merge import elementwise
    from compiler.merge.engine import MergeOptions, merge_recipe
    from compiler.resources import default_spec_dir

    if elementwise.STALE:
        print(
            "mirc merge: warning: mirc's C extension was built from another version of mirc and "
            "is not used: elementwise merges run in numpy alone, slower, and in rare elements "
            "one float32 unit off torch's; reinstall mirc to rebuild it",
            file=sys.stderr,
        )
    spec_dir = default_spec_dir()
    linked = _registry(spec_dir)
    options = MergeOptions(
        recipe=args.recipe,
        output=args.output,
        threads=max(1, args.threads),
        device=args.device,
        dtype=args.dtype,
        model_dir=args.model_dir,
        missing=args.missing,
        resolver=_resolver(linked),
        family=_family_matcher(spec_dir, linked),
        identify=_identifier(linked),
    )
    if sys.stderr.isatty() and not args.json:
        result = _with_progress(options)
    else:
        result = merge_recipe(options)
    if args.json:
        print_json({"output": str(result.output), "keys": result.keys, "bytes": result.bytes})
    else:
        print(f"{result.output}: {result.keys} tensors, {result.bytes} bytes")
    return EXIT_OK


def _registry(spec_dir: Path) -> Callable[[], LinkedRegistry | None]:
    """The registry, imported and loaded once, the first time something needs it: a MIR id the
    recipe names, a MIR-id model to identify, block fingerprints the cache does not hold. An
    elementwise merge of files named by path over a warm cache never loads it."""

    @functools.cache
    def linked() -> LinkedRegistry | None:
        from compiler.registry import check_registry

        return check_registry(spec_dir).linked

    return linked


def _resolver(linked: Callable[[], LinkedRegistry | None]) -> MirResolver:
    """MIR ids resolved through the registry, loaded when a recipe names one."""
    loaded: list[MirResolver] = []

    def resolve(mir: MirId) -> ResolvedModel | None:
        if not loaded:
            from compiler.registry import recipe_resolver

            registry = linked()
            loaded.append(recipe_resolver(registry) if registry is not None else lambda _: None)
        return loaded[0](mir)

    return resolve


def _identifier(linked: Callable[[], LinkedRegistry | None]) -> Identifier:
    """MIR-id models identified against the registry, imported and loaded when a recipe's
    MIR-id model is not found by name."""
    loaded: list[Identifier] = []

    def identify(header: SafetensorsHeader) -> Sequence[str]:
        if not loaded:
            from compiler.identify import registry_identifier

            loaded.append(registry_identifier(linked))
        return loaded[0](header)

    return identify


def _family_matcher(spec_dir: Path, linked: Callable[[], LinkedRegistry | None]) -> FamilyMatcher:
    """Headers matched against the registry's block fingerprints, cached between runs."""
    from compiler.merge.blocks import block_fingerprints, fingerprint_matcher
    from compiler.merge.families import cache_dir, cached_fingerprints

    def load() -> list[BlockFingerprint]:
        return block_fingerprints(linked())

    return fingerprint_matcher(lambda: cached_fingerprints(spec_dir, cache_dir(), load))


def _with_progress(options: MergeOptions) -> MergeResult:
    """The merge with a progress bar on the terminal: keys done, bytes written, time left."""
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    from compiler.merge.engine import merge_recipe, plan_merge

    plan = plan_merge(options)
    count = len(plan.layout.tensors)
    columns = (
        TextColumn("{task.fields[keys]}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Bar(*columns, transient=True) as bar:
        data = sum(tensor.nbytes for tensor in plan.layout.tensors)
        task = bar.add_task("merge", total=data, keys=f"0/{count} keys")
        done = [0]

        def advance(keys: int, nbytes: int) -> None:
            done[0] += keys
            bar.update(task, advance=nbytes, keys=f"{done[0]}/{count} keys")

        return merge_recipe(replace(options, progress=advance))
