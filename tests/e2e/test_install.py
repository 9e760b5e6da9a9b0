"""`pip install .` into a fresh virtual environment gives a working `frontdesk` command.

The checkout's product files (what `git ls-files` lists, committed or not, and not ignored)
are copied to a temporary folder, so no stale `build/` and no checkout on `sys.path` can
help. A new venv gets them with `pip install --no-deps .` (setuptools from the package
index or pip's cache, as for anyone). Only the third-party dependencies come from this
checkout's `.venv`, through a `.pth` file: it is faster than downloading them again, and
the test then checks the installed metadata's requirements against them. Run it with
`make check-install`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ("run", "migrate", "demo", "subscriber", "message", "deliveries")

# Every requirement of the installed distribution (extras aside) is met by an installed
# distribution, and the product's modules and data come from the new environment.
CHECK = """
import importlib.metadata as md, sys
from pathlib import Path
from packaging.requirements import Requirement
unmet = []
for line in md.requires("frontdesk") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        unmet.append(f"{req} (missing)")
        continue
    if not req.specifier.contains(version, prereleases=True):
        unmet.append(f"{req} (have {version})")
import bot, gateway, locales, main, models.migrations
from locales import tr
here = [Path(m.__file__).resolve() for m in (bot, gateway, locales, main, models.migrations)]
print("unmet:", unmet)
print("outside:", [str(p) for p in here if not p.is_relative_to(Path(sys.prefix).resolve())])
print("ru:", tr("ru", "Call back"))
"""


def product_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return [
        name
        for name in listed.split("\0")
        if name
        and (name in ("pyproject.toml", "main.py") or name.split("/")[0] in packages)
        and (ROOT / name).is_file()
    ]


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(600)
def test_pip_install_in_a_fresh_venv_gives_a_working_frontdesk_command(tmp_path: Path) -> None:
    source, venv, elsewhere = tmp_path / "source", tmp_path / "venv", tmp_path / "elsewhere"
    for name in product_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FRONTDESK__"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=elsewhere, env=env)
    python = venv / "bin" / "python"
    new_site = run(
        python,
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=elsewhere,
        env=env,
    ).strip()
    # The dependencies only: .pth lines add a folder, without running the .pth files in it
    # (so the checkout's editable install stays out).
    (Path(new_site) / "_deps_from_dev_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        "--ignore-installed",  # the checkout's editable `frontdesk` is no concern of this venv
        ".",
        cwd=source,
        env=env,
    )
    shutil.rmtree(source)  # nothing of the checkout is left to import

    frontdesk = venv / "bin" / "frontdesk"
    usage = run(frontdesk, "--help", cwd=elsewhere, env=env)
    assert usage.startswith("usage: frontdesk")
    assert all(command in usage for command in SUBCOMMANDS), usage

    checked = run(python, "-c", CHECK, cwd=elsewhere, env=env).splitlines()
    assert checked == ["unmet: []", "outside: []", "ru: Перезвонить"]

    # The packaged migrations build a database, from anywhere.
    env["FRONTDESK__DATABASE__URL"] = f"sqlite://{elsewhere / 'installed.sqlite3'}"
    assert run(frontdesk, "migrate", cwd=elsewhere, env=env) == "database schema is up to date\n"
