"""Build the agent's zipapp: netcore plus the pure-Python code of the packages it imports.

    .venv/bin/python scripts/build_agent.py [--output dist/switchboard-agent.pyz]

The result is one file that any host's python3 (3.11 or newer, as in Debian 12) runs by itself:
`python3 -I switchboard-agent.pyz --url ws://DASHBOARD/ws/agent/ --token-file FILE`. It holds no
Django, no database driver and nothing of the web app. Third-party packages are found, not listed:
every top-level module netcore imports that is not in the standard library is mapped to its installed
distribution (and that distribution's requirements), and their files are copied from this virtualenv
without compiled extensions (websockets and PyYAML fall back to their pure-Python code). The archive
is reproducible: the same sources give the same bytes, hence the same sha256.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata as metadata
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "netcore"
DEFAULT_OUTPUT = REPO / "dist" / "switchboard-agent.pyz"
INTERPRETER = "/usr/bin/env python3"
MIN_PYTHON = (3, 11)
MIN_TEXT = ".".join(map(str, MIN_PYTHON))
# compiled code cannot be imported from a zip; caches and install bookkeeping are not needed
SKIP_SUFFIXES = (".so", ".pyd", ".dylib", ".c", ".h", ".pyx", ".pxd", ".pyc")
SKIP_NAMES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed entry dates: the same input gives the same archive

MAIN = f'''"""switchboard-agent: `python3 switchboard-agent.pyz --help`."""

import sys

if sys.version_info < {MIN_PYTHON!r}:
    sys.exit("switchboard-agent needs Python {MIN_TEXT} or newer, not " + sys.version.split()[0])

from netcore.agent.cli import main  # noqa: E402

sys.exit(main())
'''


def imported_modules(root: Path) -> set[str]:
    """Top-level names of every absolute import in the package's source."""
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def third_party(modules: Iterable[str]) -> set[str]:
    """The modules that are neither the standard library nor the package itself."""
    return {m for m in modules if m not in sys.stdlib_module_names and m not in (PACKAGE, "__future__")}


def _requirement_name(requirement: str) -> str | None:
    """The distribution a requirement names, or None for one that only applies to an extra."""
    if "extra ==" in requirement.replace('"', "").replace("'", ""):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return match.group(0) if match else None


def distributions_for(modules: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions providing `modules`, and (recursively) what they require."""
    providers = metadata.packages_distributions()
    wanted: list[str] = []
    for module in sorted(modules):
        if module not in providers:
            raise SystemExit(f"netcore imports {module!r}, which is not installed: run `make setup`")
        wanted.extend(providers[module])
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        name = wanted.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            print(f"  (not installed, not bundled: {name}, an optional or platform-specific requirement)")
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist
        wanted.extend(n for r in dist.requires or () if (n := _requirement_name(r)))
    return sorted(found.values(), key=lambda d: d.metadata["Name"].lower())


def _keep(relative: Path) -> bool:
    return (
        "__pycache__" not in relative.parts
        and relative.suffix not in SKIP_SUFFIXES
        and relative.name not in SKIP_NAMES
    )


def archive_entries(dists: Iterable[metadata.Distribution]) -> Iterator[tuple[str, Path]]:
    """(name in the archive, file on disk) for the package's own files and the distributions' files."""
    package_root = REPO / PACKAGE
    for path in package_root.rglob("*"):
        relative = path.relative_to(REPO)
        if path.is_file() and _keep(relative):
            yield relative.as_posix(), path
    for dist in dists:
        for file in dist.files or ():
            relative = Path(file)
            if relative.parts[0] == ".." or not _keep(relative):
                continue  # console scripts, compiled extensions, caches
            yield relative.as_posix(), Path(dist.locate_file(file))


def build(output: Path) -> list[metadata.Distribution]:
    """Write the zipapp to `output` (atomically) and return the bundled distributions."""
    dists = distributions_for(third_party(imported_modules(REPO / PACKAGE)))
    entries = dict(archive_entries(dists))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as fh:
            fh.write(f"#!{INTERPRETER}\n".encode())
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in sorted(entries):
                    _add(archive, name, entries[name].read_bytes())
                _add(archive, "__main__.py", MAIN.encode())
        partial.chmod(0o755)
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)  # never leave a half-written archive next to the real one
        raise
    return dists


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the agent's self-contained zipapp.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args()
    dists = build(args.output)
    bundled = ", ".join(f"{d.metadata['Name']} {d.version}" for d in dists) or "nothing"
    print(f"built {args.output} ({args.output.stat().st_size // 1024} KiB; netcore with {bundled})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
