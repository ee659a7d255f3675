"""Build the Vercel bundle with Vercel's own CLI, offline (no login, no project on Vercel).

`vercel build` runs in a staging copy holding only what a deploy needs (functions/, shared/,
requirements.txt, vercel.json) and a local `.vercel/project.json`: its Python builder writes
pyproject.toml, uv.lock and .python-version into the project root, which must not happen in the
checkout. It needs `python3.12` and `uv` on PATH (.ci/package.sh puts them there). The output
is then made self-contained in build/vercel: each function's `.vc-config.json` lists in
`filePathMap` the project files it uses; they are copied into its `.func` folder, as
`vercel deploy --prebuilt` would upload them. (`vercel build --standalone` does the same but
fails with several entry points: each build re-syncs the builder's shared venv under the
copies of the previous ones.)

usage: python .ci/build_vercel.py [--out build/vercel]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOYED = ("functions", "shared", "requirements.txt", "vercel.json")
PROJECT = {
    "projectId": "prj_offline_package_check",
    "orgId": "team_offline_package_check",
    "settings": {"framework": None},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "vercel")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vercel-stage-") as scratch:
        stage = Path(scratch)
        make_stage(stage)
        run_vercel_build(stage)
        shutil.rmtree(args.out, ignore_errors=True)
        materialize(stage, args.out)


def make_stage(stage: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in DEPLOYED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, stage / name, ignore=ignore)
        else:
            shutil.copy2(source, stage / name)
    (stage / ".vercel").mkdir()
    (stage / ".vercel" / "project.json").write_text(json.dumps(PROJECT))


def run_vercel_build(stage: Path) -> None:
    vercel = ROOT / "node_modules" / ".bin" / "vercel"
    environment = {
        **os.environ,
        "VERCEL_TELEMETRY_DISABLED": "1",
        "UV_PYTHON_PREFERENCE": "only-system",  # never download a Python
    }
    subprocess.run([vercel, "build", "--yes"], cwd=stage, env=environment, check=True)  # noqa: S603


def materialize(stage: Path, target: Path) -> None:
    shutil.copytree(stage / ".vercel" / "output", target)
    for config_path in sorted(target.glob("functions/**/.vc-config.json")):
        config = json.loads(config_path.read_text())
        for bundle_path, project_path in config.pop("filePathMap", {}).items():
            destination = config_path.parent / bundle_path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stage / project_path, destination)
        config_path.write_text(json.dumps(config, indent=2) + "\n")


if __name__ == "__main__":
    main()
