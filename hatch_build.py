"""Builds mirc's one C extension, ``compiler.merge._kernels`` (``mirc merge``'s elementwise
kernels, with F16C and FMA), while hatchling builds the wheel.

setuptools' ``build_ext`` does the compiling, so that every platform's compiler and flags are
its business. The extension is optional: where no C compiler or no Python headers are found,
the build warns and goes on, and ``mirc merge`` computes with numpy alone (slower; in rare
elements one float32 unit off torch's, see ``compiler/merge/elementwise.py``).
An editable install builds it into the source tree, where the checkout imports it from; a
wheel carries it as ``compiler/merge/_kernels.<platform suffix>``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NAME = "compiler.merge._kernels"
SOURCE = "compiler/merge/_kernels.c"


class KernelsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"
    scratch: Path | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        editable = version == "editable"
        self.scratch = scratch = Path(tempfile.mkdtemp(prefix="mirc-build-ext-"))
        built = _build(Path(self.root), scratch, inplace=editable)
        if built is None:
            print(
                f"warning: {NAME} was not built (no C compiler or Python headers?); "
                "mirc merge will compute with numpy alone, which is slower",
                file=sys.stderr,
            )
            return
        if not editable:
            target = built.relative_to(scratch).as_posix()
            build_data["force_include"][str(built)] = target
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self.scratch is not None:  # the wheel holds its copy of the extension now
            shutil.rmtree(self.scratch, ignore_errors=True)


def _build(root: Path, scratch: Path, *, inplace: bool) -> Path | None:
    """Compile the extension (into the source tree when ``inplace``, else under ``scratch``);
    its path, or None when it could not be built."""
    try:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext
    except ImportError:  # e.g. --no-build-isolation where setuptools is not installed
        return None

    libraries = [] if sys.platform.startswith("win") else ["m"]  # fmaf
    # compiled with the flags Python was built with (-O3 on gcc and clang)
    extension = Extension(NAME, [SOURCE], optional=True, libraries=libraries)
    command = build_ext(Distribution({"name": "mirc", "ext_modules": [extension]}))
    command.inplace = inplace
    command.force = True
    command.build_lib = str(scratch)
    command.build_temp = str(scratch / "temp")
    command.ensure_finalized()
    previous = Path.cwd()
    os.chdir(root)  # setuptools resolves the source and the in-place target from here
    try:
        path = root / command.get_ext_fullpath(NAME)
        path.unlink(missing_ok=True)  # a failed build must not leave an older one in use
        command.run()
    finally:
        os.chdir(previous)
    return path if path.exists() else None
