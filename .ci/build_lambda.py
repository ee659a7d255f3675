"""Build the AWS Lambda bundle that serverless.yml deploys (`package.artifact`).

`build/lambda/ai-queue.zip` holds `functions/` and `shared/` (with its Lua scripts) and, at the
zip's root, requirements.txt installed from manylinux x86_64 wheels for CPython 3.12 (what the
python3.12 runtime on Amazon Linux 2023, glibc 2.34, loads), whatever machine builds it.
Everything is byte-compiled by a real 3.12 (unchecked-hash .pyc: /var/task is read-only, so a
bundle without them recompiles every module on every cold start), and the zip is
reproducible: sorted entries, fixed timestamps and modes.

usage: python .ci/build_lambda.py --python /path/to/python3.12 [--out build/lambda]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("functions", "shared")
ZIP_NAME = "ai-queue.zip"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
TASK_ROOT = "/var/task"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="a CPython 3.12 to byte-compile with")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lambda-bundle-") as scratch:
        tree = Path(scratch)
        install_requirements(tree)
        copy_sources(tree)
        byte_compile(args.python, tree)
        write_zip(tree, args.out / ZIP_NAME)


def install_requirements(tree: Path) -> None:
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--only-binary=:all:", "--implementation", "cp",
        "--python-version", "3.12", *platforms,
        "--target", str(tree), "--requirement", str(ROOT / "requirements.txt"),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603
    shutil.rmtree(tree / "bin", ignore_errors=True)  # console scripts for the build machine


def copy_sources(tree: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)


def byte_compile(python: str, tree: Path) -> None:
    # One process: parallel workers can marshal the same code object differently.
    command = [
        python, "-m", "compileall", "-q", "-j", "1",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(tree), "-p", TASK_ROOT, str(tree),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603


def write_zip(tree: Path, target: Path) -> None:
    files = sorted(path for path in tree.rglob("*") if path.is_file())
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(tree).as_posix(), FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(entry, path.read_bytes())


if __name__ == "__main__":
    main()
