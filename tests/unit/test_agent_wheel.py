"""The Host agent wheel the Portal builds and serves (app/downloads/agent_wheel.py): what it
holds, its metadata and console script, that it is built once and reused, rebuilt when a
source changes, the same bytes for the same sources, one build for concurrent callers, and that
``relay_ext`` from the wheel runs on its pure-Python twin."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from app.downloads import agent_wheel
from app.downloads.agent_wheel import DEPENDENCIES, ensure_wheel, source_root

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^tessera_agent-(\d+\.\d+\.\d+\+src[0-9a-f]{12})-py3-none-any\.whl$")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return ensure_wheel(tmp_path_factory.mktemp("agent-wheels"))


def _dist_info(archive: zipfile.ZipFile, name: str) -> str:
    [path] = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/" + name, n)]
    return archive.read(path).decode()


def _source_copy(tmp_path: Path) -> Path:
    """agents/ and relay_ext/ copied, without caches or compiled modules."""
    root = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc")
    for package in ("agents", "relay_ext"):
        shutil.copytree(source_root() / package, root / package, ignore=ignore)
    return root


def test_wheel_holds_the_agent_and_the_pure_twin_and_nothing_of_the_portal(wheel):
    match = NAME.match(wheel.filename)
    assert match, wheel.filename
    assert wheel.version == match.group(1) and wheel.path.stat().st_size == wheel.size
    with zipfile.ZipFile(wheel.path) as archive:
        names = set(archive.namelist())
    for expected in ("agents/__init__.py", "agents/common/protocol.py", "agents/common/transport.py",
                     "agents/host/__main__.py", "agents/host/agent.py", "agents/host/frames.py",
                     "agents/ondemand/__main__.py", "agents/ondemand/windows.py",
                     "relay_ext/__init__.py", "relay_ext/pure.py", "relay_ext/_zstd.py",
                     "relay_ext/py.typed"):
        assert expected in names, f"{expected} is missing from the wheel"
    assert not [n for n in names if n.startswith(("app/", "tests/", "bench/"))]
    assert not [n for n in names if n.endswith((".pyx", ".so", ".c", ".pyc"))]
    sources = {n for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    on_disk = {name for name, _ in agent_wheel.source_files(source_root())}
    assert sources == on_disk


def test_wheel_metadata_names_the_agent_its_dependencies_and_a_pure_python_tag(wheel):
    with zipfile.ZipFile(wheel.path) as archive:
        metadata = Parser().parsestr(_dist_info(archive, "METADATA"))
        wheel_info = Parser().parsestr(_dist_info(archive, "WHEEL"))
    assert metadata["Name"] == "tessera-agent" and metadata["Version"] == wheel.version
    assert metadata["Requires-Python"] == ">=3.11"
    assert sorted(metadata.get_all("Requires-Dist")) == sorted(DEPENDENCIES)
    assert wheel_info["Root-Is-Purelib"] == "true" and wheel_info["Tag"] == "py3-none-any"


def test_console_scripts_are_tessera_agent_and_tessera_ondemand_with_real_mains(wheel):
    import configparser
    import importlib

    with zipfile.ZipFile(wheel.path) as archive:
        entry_points = configparser.ConfigParser()
        entry_points.read_string(_dist_info(archive, "entry_points.txt"))
    scripts = entry_points["console_scripts"]
    assert dict(scripts) == {"tessera-agent": "agents.host.__main__:main",
                             "tessera-ondemand": "agents.ondemand.__main__:main"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_record_lists_every_file_with_its_hash(wheel):
    """The wheel is well formed: pip checks RECORD's hashes when it installs."""
    with zipfile.ZipFile(wheel.path) as archive:
        record = _dist_info(archive, "RECORD").splitlines()
        listed = {}
        for line in filter(None, record):
            name, digest, size = line.rsplit(",", 2)
            listed[name] = (digest, size)
        assert set(listed) == set(archive.namelist())
        for name, (digest, size) in listed.items():
            if name.endswith("/RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name


def test_dependencies_are_the_agents_requirements_in_setup_py():
    setup_py = (ROOT / "setup.py").read_text()
    for requirement in DEPENDENCIES:
        assert f'"{requirement}"' in setup_py, f"{requirement} differs from setup.py's"
    # The agent's imports, and nothing the Portal alone needs.
    assert {re.split(r"[<>=]", d)[0] for d in DEPENDENCIES} == {
        "mss", "python-xlib", "websockets", "zstandard"}


def test_cached_wheel_is_reused_without_building_again(wheel):
    before = wheel.path.stat()
    again = ensure_wheel(wheel.path.parent)
    after = again.path.stat()
    assert again == wheel
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in wheel.path.parent.iterdir()
                  if not p.name.startswith(".build.lock")) == [wheel.filename]


def test_a_changed_source_gives_a_new_version_and_a_rebuild(tmp_path):
    root = _source_copy(tmp_path)
    cache = tmp_path / "cache"
    first = ensure_wheel(cache, root=root)
    transport = root / "agents/common/transport.py"
    transport.write_text(transport.read_text() + "\nCHANGED_FOR_THE_TEST = True\n")
    second = ensure_wheel(cache, root=root)
    assert second.version != first.version and second.filename != first.filename
    assert second.sha256 != first.sha256
    with zipfile.ZipFile(second.path) as archive:
        assert b"CHANGED_FOR_THE_TEST" in archive.read("agents/common/transport.py")
    # The superseded build is removed; only the current one is served.
    assert sorted(p.name for p in cache.glob("*.whl")) == [second.filename]
    assert not list(cache.glob(".build-*"))
    # A source file that appears counts too (a new module of the agent).
    (root / "agents/host/extra.py").write_text("VALUE = 1\n")
    assert agent_wheel.current_filename(root) != second.filename


def test_the_same_sources_build_to_the_same_bytes(wheel, tmp_path):
    """Two Portals (or one after its cache was cleared) serve the same checksum."""
    rebuilt = ensure_wheel(tmp_path / "elsewhere")
    assert rebuilt.filename == wheel.filename
    assert rebuilt.sha256 == wheel.sha256
    assert rebuilt.path.read_bytes() == wheel.path.read_bytes()


def test_concurrent_callers_in_one_process_share_one_build(tmp_path):
    cache = tmp_path / "cache"
    seen, errors = [], []
    start = threading.Barrier(3)

    def fetch():
        try:
            start.wait()
            result = ensure_wheel(cache)
            seen.append((result.path, os.stat(result.path).st_ino, result.sha256))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(seen) == 3
    # One build: every caller got the very file the first build renamed into place.
    assert len(set(seen)) == 1
    assert [p.name for p in cache.glob("*.whl")] == [seen[0][0].name]


def test_concurrent_processes_share_one_build(tmp_path):
    cache = tmp_path / "cache"
    code = ("import os, sys\n"
            "from app.downloads.agent_wheel import ensure_wheel\n"
            "w = ensure_wheel(sys.argv[1])\n"
            "print(os.stat(w.path).st_ino, w.sha256)\n")
    processes = [subprocess.Popen([sys.executable, "-c", code, str(cache)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    assert outputs[0] == outputs[1]
    assert len(list(cache.glob("*.whl"))) == 1 and not list(cache.glob(".build-*"))


def test_relay_ext_from_the_wheel_falls_back_to_the_pure_twin(wheel, tmp_path):
    """Unpacked alone (no compiled ``_tiles``), relay_ext imports cleanly and works."""
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel.path) as archive:
        archive.extractall(unpacked)
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "import relay_ext, agents.host.frames\n"
            "assert relay_ext.__file__.startswith(sys.argv[1]), relay_ext.__file__\n"
            "assert agents.host.frames.__file__.startswith(sys.argv[1])\n"
            "frame = bytes(64 * 64 * 4)\n"
            "changed = relay_ext.changed_tiles(frame, bytes([1]) * len(frame), 64, 64, 64)\n"
            "print(relay_ext.IMPLEMENTATION, len(changed))\n")
    # The base interpreter with this venv's site-packages on PYTHONPATH: the dependencies are
    # there, but not the editable install's import hook (a .pth file, which only site dirs
    # run), which would hand out the checkout's compiled relay_ext._tiles.
    env = {k: v for k, v in os.environ.items() if k != "TESSERA_PURE_PYTHON"}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    done = subprocess.run([sys._base_executable, "-c", code, str(unpacked)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python", "1"]


def test_sources_without_the_entry_point_are_refused_before_building(tmp_path):
    """A Portal installed without agents/host (it has no __init__.py, so a packaging slip can
    drop it) must not serve a wheel whose tessera-agent cannot start."""
    root = _source_copy(tmp_path)
    (root / "agents/host/__main__.py").unlink()
    with pytest.raises(agent_wheel.AgentWheelError, match="agents/host/__main__.py"):
        ensure_wheel(tmp_path / "cache", root=root)
    assert not (tmp_path / "cache").exists()
