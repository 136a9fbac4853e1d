"""Imitate the lent GPU machine's Python packages here, for a dry run of ``bench.gpu_check`` on the CPU.

Installs into ``--site`` what ``bench/gpu_check.sh`` installs there (the wheels of ``.whl/``: the
binary ones again for this interpreter, at the same versions), plus the machine's own transformers,
tokenizers and huggingface_hub versions, and a ``sitecustomize.py`` whose import guard refuses every
top-level module that is neither in the standard library, nor on the machine (``MACHINE`` and its
dependencies), nor outside this .venv's site-packages (sys.path's finder is wrapped). With ``PYTHONPATH=<site>:<repo>`` every process
(the check, the launcher's workers) then fails on an import the machine could not satisfy, and the
guard lists the names it hid in ``<site>/refused.txt`` (probes for optional packages included).

    .venv/bin/python -m bench.gpu_emulate --site /tmp/gpu-site
    PYTHONPATH=/tmp/gpu-site:$PWD .venv/bin/python -m bench.gpu_check --out /tmp/gpu-out --allow-cpu

What it cannot imitate: Python 3.12, torch 2.11 with CUDA, numpy 2.5 and the machine's unlisted
versions of pandas, pyarrow and fsspec.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import shutil
import site as site_module
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

from bench.gpu_wheels import MACHINE, WHEELS, machine_closure, wheel_requirements

# The machine's versions of the packages whose API the engine uses most; pure Python or abi3 wheels,
# so they install for this interpreter too.
MACHINE_PINS = ("transformers", "tokenizers", "huggingface-hub")

GUARD = '''"""Import guard of bench.gpu_emulate: only what the lent GPU machine would have."""
import os
import sys
from importlib.machinery import PathFinder
from importlib.metadata import DistributionFinder

_ALLOWED = frozenset({allowed!r})
_DISTS = frozenset({dists!r})
_HIDDEN = frozenset({hidden!r})
_REFUSED = {refused!r}


def _visible_path():
    return [p for p in sys.path if os.path.abspath(p or ".") not in _HIDDEN]


class _MachinePathFinder:
    """sys.path's finder, but a top-level module the machine lacks is not looked for in this .venv's
    site-packages, so an import fails and a probe (importlib.util.find_spec) finds nothing, as there."""

    invalidate_caches = PathFinder.invalidate_caches

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if path is not None or "." in name or name in sys.stdlib_module_names or name in _ALLOWED:
            return PathFinder.find_spec(name, path, target)
        spec = PathFinder.find_spec(name, _visible_path(), target)
        if spec is None:
            try:
                with open(_REFUSED, "a") as log:
                    log.write(f"{{os.getpid()}} {{name}}\\n")
            except OSError:
                pass
        return spec

    @classmethod
    def find_distributions(cls, context=None):
        # importlib.metadata asks the meta path too: the distributions the machine lacks stay unseen.
        for dist in PathFinder.find_distributions(context or DistributionFinder.Context()):
            name = (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")
            if name in _DISTS or os.path.abspath(str(dist.locate_file(""))) not in _HIDDEN:
                yield dist


sys.meta_path[:] = [_MachinePathFinder if f is PathFinder else f for f in sys.meta_path]
'''


def allowed_modules(site: Path) -> set[str]:
    """Top-level import names of the distributions the machine has (its pinned ones' metadata in ``site``)."""
    on_machine = set(machine_closure([str(site), *sys.path]))
    names = set()
    for dist in metadata.distributions(path=[str(site), *sys.path]):
        if canonicalize_name(dist.metadata["Name"]) in on_machine:
            top = (dist.read_text("top_level.txt") or "").split()
            files = [f.parts[0].removesuffix(".py") for f in dist.files or () if len(f.parts) >= 1]
            names.update(top or (f for f in files if ".dist-info" not in f and f != ".."))
    return names


def missing_machine_dependencies(site: Path) -> list[str]:
    """Requirements of the machine's own versions (MACHINE_PINS, installed in ``site``) that neither
    ``site`` nor this .venv satisfies, e.g. the HTTP client an older huggingface_hub uses."""
    paths = [str(site), *sys.path]
    missing = []
    for name in machine_closure(paths):
        if next(iter(metadata.distributions(name=name, path=paths)), None) is None and name not in MACHINE:
            missing.append(name)
    return missing


def local_wheels(scratch: Path) -> list[Path]:
    """The wheels of .whl/ for this interpreter: pure ones as they are, binary ones downloaded again."""
    wheels, again = [], []
    for wheel in sorted(WHEELS.glob("*.whl")):
        name, version, _ = wheel_requirements(wheel)
        if wheel.name.endswith("-none-any.whl") and "-py3-" in wheel.name:
            wheels.append(wheel)
        else:
            again.append(f"{name}=={version}")
    again += [f"{name}=={MACHINE[name]}" for name in MACHINE_PINS]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*cmd, "-d", str(scratch), *again], check=True, timeout=600)
    return wheels + sorted(scratch.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_emulate", description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, required=True, help="folder to install into (emptied first)")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    shutil.rmtree(site, ignore_errors=True)
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target"]
    with tempfile.TemporaryDirectory(prefix="gpu-emulate-") as scratch:
        wheels = local_wheels(Path(scratch))
        subprocess.run([*install, str(site), "--no-index", *map(str, wheels)], check=True, timeout=600)
    # The machine's own versions may need packages this .venv does not have (until none is missing).
    while missing := missing_machine_dependencies(site):
        print("installing what the machine's versions need:", ", ".join(missing))
        subprocess.run([*install, str(site), "--upgrade", *missing], check=True, timeout=600)
    guard = GUARD.format(
        allowed=sorted(allowed_modules(site)),
        dists=sorted(machine_closure([str(site), *sys.path])),
        hidden=sorted({os.path.abspath(p) for p in site_module.getsitepackages()}),
        refused=str(site / "refused.txt"),
    )
    (site / "sitecustomize.py").write_text(guard, encoding="utf-8")
    print(f"installed {len(wheels)} wheels and the import guard into {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
