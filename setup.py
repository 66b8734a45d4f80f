"""The build hook of the editfleet distribution (metadata and dependencies: pyproject.toml).

The gRPC stubs, package `editfleet` (`from editfleet.v1 import editor_pb2`), are generated from
protos/ by grpc_tools.protoc whenever egg_info or build_py runs: in an sdist, a wheel build and an
editable install alike. They are written to gen/ (ignored by git, never committed) and packaged from there
(package_dir), so an editable install imports the very files a wheel would ship.

    python setup.py stubs      # regenerate gen/ only (what `make protos` runs)
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py as _build_py
from setuptools.command.egg_info import egg_info as _egg_info

ROOT = Path(__file__).resolve().parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
SOURCE_PACKAGES = ("editfleet_common", "editor_service", "scorer_service", "orchestrator", "suites")
GENERATED_SUFFIXES = (".py", ".pyi", ".proto")


def generate_stubs(out: Path = GEN) -> list[str]:
    """Write the stubs of protos/editfleet/v1/*.proto (with the .proto files themselves) under `out`.

    Several installs may run at once (make's three environments): each file is generated aside and
    replaced atomically, and only when its content changed."""
    import importlib.resources

    from grpc_tools import protoc

    protos = sorted(PROTOS.glob("editfleet/v1/*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTOS}/editfleet/v1")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["grpc_tools.protoc", f"-I{PROTOS}", f"-I{well_known}",
                f"--python_out={tmp}", f"--grpc_python_out={tmp}", f"--pyi_out={tmp}", *map(str, protos)]
        if protoc.main(args) != 0:
            raise SystemExit("grpc_tools.protoc failed on " + " ".join(p.name for p in protos))
        package = Path(tmp, "editfleet", "v1")
        for init in (package.parent / "__init__.py", package / "__init__.py"):
            init.write_text("# Generated from protos/ at build time (setup.py); never edited, never committed.\n")
        for proto in protos:
            shutil.copyfile(proto, package / proto.name)
        generated = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        for rel in generated:
            src, dst = Path(tmp, rel), out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
                continue
            part = dst.with_name(f".{dst.name}.{os.getpid()}.part")
            shutil.copyfile(src, part)
            os.replace(part, dst)
    for old in (out / "editfleet").rglob("*"):  # the stubs of a .proto since removed
        if old.is_file() and old.suffix in GENERATED_SUFFIXES and str(old.relative_to(out)) not in generated:
            old.unlink(missing_ok=True)
    return generated


class build_py(_build_py):
    """build_py that generates the stubs first (wheels and editable installs)."""

    def run(self):
        generate_stubs()
        super().run()


class egg_info(_egg_info):
    """egg_info (the first step of every build: sdist, wheel, editable) lists the package's files, the
    generated ones included: they must exist by then."""

    def run(self):
        generate_stubs()
        super().run()


if __name__ == "__main__":
    if sys.argv[1:] == ["stubs"]:
        print(f"generated {len(generate_stubs())} files under {GEN.relative_to(ROOT)}/")
        sys.exit(0)
    setup(
        packages=[*find_packages(include=[f"{name}{tail}" for name in SOURCE_PACKAGES for tail in ("", ".*")]),
                  "editfleet", "editfleet.v1"],
        package_dir={"editfleet": "gen/editfleet"},
        cmdclass={"build_py": build_py, "egg_info": egg_info},
    )
