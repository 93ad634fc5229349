"""Where the registry (``spec/``), the templates (``templates/``) and the website's MkDocs
project (``site/``: ``mkdocs.yml`` and the hand-written ``docs/``) are found.

In a source checkout (or an editable install) they are the folders at the repository root, the
customer's layout. A wheel carries copies inside the package, under ``compiler/_bundled/``
(see ``[tool.hatch.build.targets.wheel.force-include]`` in ``pyproject.toml``).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _checkout_root() -> Path | None:
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "spec").is_dir():
        return root
    return None


def data_dir(name: str) -> Path:
    """The shipped folder ``name`` (``spec``, ``templates`` or ``site``), from a checkout or the
    wheel."""
    root = _checkout_root()
    if root is not None and (root / name).is_dir():
        return root / name
    bundled = PACKAGE_DIR / "_bundled" / name
    if bundled.is_dir():
        return bundled
    raise FileNotFoundError(f"mirc is installed without its {name}/ folder ({bundled})")


def default_spec_dir(cwd: Path | None = None) -> Path:
    """``./spec`` when the working folder holds a registry, else the registry mirc ships with."""
    local = (cwd or Path.cwd()) / "spec"
    markers = ("taxonomy.yaml", "models", "ops", "targets")
    if any((local / marker).exists() for marker in markers):
        return local
    return data_dir("spec")
