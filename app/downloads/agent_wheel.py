"""The agents as a pure-Python wheel, built from the Portal's own copy of them: the Host agent
(``tessera-agent``) and the OnDemand agent (``tessera-ondemand``), one wheel for both.

The Linux installer (``templates/downloads/install-linux.sh``) downloads this wheel from the
Portal (``GET /downloads/agent/<file>``), checks the SHA-256 rendered into the script and
pip-installs the file, so a device runs exactly the agent its Portal ships, never whatever a
public index calls by that name. Called by ``app/downloads/views.py`` (the download route and
the installer) and by ``tessera agent build-wheel`` (``app/downloads/cli.py``).

The wheel holds ``agents/`` and ``relay_ext`` without the compiled extension: ``relay_ext``
falls back to its pure-Python twin when ``relay_ext._tiles`` is absent. Its dependencies are
the agent's own (:data:`DEPENDENCIES`), installed from the device's configured index.

Building: setuptools' PEP 517 backend (``build_meta.build_wheel``, i.e. ``bdist_wheel``) run in
a subprocess on a project generated in a temporary folder, with ``SOURCE_DATE_EPOCH`` fixed so
the same sources give the same bytes. The version is the Portal's plus a local label made of a
hash of the source files, the recipe and the setuptools version (``0.1.0+src1a2b3c4d5e6f``):
a changed source gives a new file name and a new build; an unchanged one reuses the wheel
cached in the instance folder (``<instance>/agent-wheels``). Builds are serialised by a lock
(threads, greenlets once gevent has patched ``threading``) and a lock file (processes sharing
the instance folder); the wheel is written under a temporary name and renamed into place, so
nobody sees half a file.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

DISTRIBUTION = "tessera-agent"
WHEEL_PREFIX = "tessera_agent-"  # the distribution name as wheel file names spell it
# The Host agent (run by the installer's systemd unit) and the OnDemand agent (run by the
# person at the computer, spec D2): both from the same sources.
CONSOLE_SCRIPTS = ("tessera-agent = agents.host.__main__:main",
                   "tessera-ondemand = agents.ondemand.__main__:main")
# The Host agent's third-party imports (agents/host/capture.py mss, input.py and clipboard.py
# python-xlib, common/transport.py websockets, relay_ext/_zstd.py zstandard); the same lower
# bounds as setup.py, which tests/unit/test_agent_wheel.py checks.
DEPENDENCIES = ("mss>=10.2", "python-xlib>=0.33", "websockets>=13", "zstandard>=0.22")
REQUIRES_PYTHON = ">=3.11"
# What the wheel takes from each package: Python sources, and for relay_ext its type stubs
# too (never _tiles.pyx, generated C or a compiled module: the wheel is pure Python).
SOURCE_PATTERNS = {"agents": ("*.py",), "relay_ext": ("*.py", "*.pyi", "py.typed")}
# Zip entry times of every build (1980-01-01, the earliest a zip can hold): reproducible bytes.
SOURCE_DATE_EPOCH = "315532800"
RECIPE_VERSION = "1"  # change when the generated project changes in a way the hash cannot see
MIMETYPE = "application/zip"  # a wheel is a zip archive
BUILD_TIMEOUT = 300.0
LOCK_TIMEOUT = 330.0

_lock = threading.Lock()
_checksums: dict[tuple[str, int, int], str] = {}


class AgentWheelError(RuntimeError):
    """The wheel could not be built (setuptools missing, a source file unreadable ...)."""


@dataclass(frozen=True)
class AgentWheel:
    path: Path
    version: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return self.path.name


def source_root() -> Path:
    """The folder holding ``agents/`` and ``relay_ext/`` (the checkout, or site-packages)."""
    import agents

    return Path(agents.__file__).resolve().parent.parent


def cache_dir_for(instance_path: str | os.PathLike) -> Path:
    return Path(instance_path) / "agent-wheels"


def source_files(root: Path) -> list[tuple[str, Path]]:
    """(path in the wheel, file) of every source the wheel holds, sorted."""
    found = []
    for package, patterns in SOURCE_PATTERNS.items():
        if not (root / package / "__init__.py").is_file():
            raise AgentWheelError(f"no {package}/ package under {root}")
        found += [(path.relative_to(root).as_posix(), path)
                  for pattern in patterns for path in (root / package).rglob(pattern)
                  if path.is_file() and "__pycache__" not in path.parts]
    names = {name for name, _ in found}
    for script in CONSOLE_SCRIPTS:
        command, target = (part.strip() for part in script.split("=", 1))
        entry = target.split(":")[0].replace(".", "/") + ".py"
        if entry not in names:
            raise AgentWheelError(f"{entry} (the {command} entry point) is missing under {root}")
    return sorted(found)


def _packages(files: list[tuple[str, Path]]) -> list[str]:
    """Every folder holding a source, as a package name: ``agents/host`` has no
    ``__init__.py`` (a namespace package), so the folders count, not the ``__init__`` files."""
    return sorted({name.rsplit("/", 1)[0].replace("/", ".") for name, _ in files})


def _setuptools_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("setuptools")
    except PackageNotFoundError:
        return "missing"


def _recipe(files: list[tuple[str, Path]]) -> dict:
    """Everything besides the file contents that decides the wheel's bytes."""
    return {"recipe": RECIPE_VERSION, "dependencies": list(DEPENDENCIES),
            "requires_python": REQUIRES_PYTHON, "scripts": list(CONSOLE_SCRIPTS),
            "packages": _packages(files), "setuptools": _setuptools_version(),
            "epoch": SOURCE_DATE_EPOCH}


def source_digest(root: Path) -> str:
    """SHA-256 over the recipe and every source file (name and bytes), hex."""
    files = source_files(root)
    digest = hashlib.sha256(json.dumps(_recipe(files), sort_keys=True).encode())
    for name, path in files:
        data = path.read_bytes()
        digest.update(f"\0{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def portal_version() -> str:
    """The Portal distribution's public version (``0.1.0``), without a local label."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tessera").split("+", 1)[0]
    except PackageNotFoundError:
        return "0.0.0"


def wheel_version(root: Path) -> str:
    # "src" first: a local label of digits only would be normalised (leading zeros dropped).
    return f"{portal_version()}+src{source_digest(root)[:12]}"


def wheel_filename(version: str) -> str:
    return f"{WHEEL_PREFIX}{version}-py3-none-any.whl"


def current_filename(root: Path | None = None) -> str:
    """The file name the current sources build to (cheap: hashes the sources, builds nothing)."""
    return wheel_filename(wheel_version(root or source_root()))


def _pyproject(version: str, files: list[tuple[str, Path]]) -> str:
    q = json.dumps  # a JSON string of ASCII text is a TOML basic string
    scripts = [tuple(part.strip() for part in script.split("=")) for script in CONSOLE_SCRIPTS]
    return "\n".join([
        "[build-system]",
        'requires = ["setuptools>=70.1"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {q(DISTRIBUTION)}",
        f"version = {q(version)}",
        'description = "Tessera agents (Host and OnDemand): let technicians see and control '
        'this machine through the Tessera relay"',
        f"requires-python = {q(REQUIRES_PYTHON)}",
        f"dependencies = [{', '.join(q(d) for d in DEPENDENCIES)}]",
        "",
        "[project.scripts]",
        *(f"{name} = {q(target)}" for name, target in scripts),
        "",
        "[tool.setuptools]",
        f"packages = [{', '.join(q(p) for p in _packages(files))}]",
        "include-package-data = false",
        "",
        "[tool.setuptools.package-data]",
        'relay_ext = ["*.pyi", "py.typed"]',  # SOURCE_PATTERNS' files besides the modules
        "",
    ])


_BUILD = ("import sys\n"
          "from setuptools import build_meta\n"
          "print(build_meta.build_wheel(sys.argv[1]))\n")


def _build(root: Path, version: str, work: Path) -> Path:
    """Generate the project in ``work`` and build the wheel into ``work/dist``."""
    files = source_files(root)
    project = work / "project"
    for name, path in files:
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        target.chmod(0o644)  # the wheel records file modes: the same for every build
    (project / "pyproject.toml").write_text(_pyproject(version, files))
    dist = work / "dist"
    dist.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PYTHONDONTWRITEBYTECODE="1")
    try:
        done = subprocess.run([sys.executable, "-c", _BUILD, str(dist)], cwd=project, env=env,
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentWheelError(f"could not run the wheel build: {exc}") from exc
    if done.returncode != 0:
        raise AgentWheelError("building the agent wheel failed (is setuptools >= 70.1 installed "
                              f"next to the Portal?):\n{done.stderr[-4000:]}")
    built = dist / (done.stdout.strip().splitlines() or [""])[-1]
    if built.name != wheel_filename(version) or not built.is_file():
        raise AgentWheelError(f"the build made {built.name!r}, not {wheel_filename(version)!r}")
    return built


def checksum(path: Path) -> str:
    """The file's SHA-256 (hex), remembered while its size and mtime stay the same."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _checksums:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                digest.update(block)
        _checksums[key] = digest.hexdigest()
    return _checksums[key]


def _describe(path: Path, version: str) -> AgentWheel:
    return AgentWheel(path=path, version=version, sha256=checksum(path), size=path.stat().st_size)


class _FileLock:
    """An exclusive ``flock`` on ``path``, taken by polling so that under gevent a waiting
    request yields to other greenlets instead of blocking the whole server."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise AgentWheelError(f"another process kept {self.path} locked for "
                                          f"{self.timeout:.0f} s") from None
                time.sleep(0.05)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def ensure_wheel(cache_dir: str | os.PathLike, root: Path | None = None) -> AgentWheel:
    """The wheel of the current sources in ``cache_dir``: the cached one, or a new build.
    Older builds in ``cache_dir`` are removed once the new one is in place."""
    root = root or source_root()
    cache = Path(cache_dir)
    version = wheel_version(root)
    final = cache / wheel_filename(version)
    if final.is_file():
        return _describe(final, version)
    cache.mkdir(parents=True, exist_ok=True)
    with _lock, _FileLock(cache / ".build.lock", LOCK_TIMEOUT):
        if final.is_file():  # built by whoever held the lock before us
            return _describe(final, version)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=cache) as work:
            built = _build(root, version, Path(work))
            built.chmod(0o644)
            os.replace(built, final)  # the work folder is inside the cache: an atomic rename
        for old in cache.glob(f"{WHEEL_PREFIX}*.whl"):
            if old != final:
                old.unlink(missing_ok=True)
    return _describe(final, version)


def wheel_for_app(app) -> AgentWheel:
    """The wheel for ``app``'s instance folder (built on first use)."""
    return ensure_wheel(cache_dir_for(app.config["INSTANCE_PATH"]))
