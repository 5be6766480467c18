"""Smoke runs of the relay benchmarks (``bench/relay.py``, ``bench/slow_viewer.py``,
``bench/idle_agents.py``) in their ``--quick`` mode, and of ``python -m bench``: each runs
against a real ``tessera run`` and prints sane JSON. The figures are not judged here (speed
targets live in the benchmarks' own output, docs/benchmarks.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.relay_harness import ROOT

pytest.importorskip("websockify")
pytest.importorskip("numpy")


def bench(*args: str, timeout: float = 120) -> dict:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_relay_benchmark_forwards_bytes_through_the_relay_and_through_websockify():
    out = bench("bench/relay.py", "--quick")
    run = out["sizes"]["1024KiB"]
    assert run["tessera"]["mb_per_s"] > 0 and run["tessera"]["messages"] > 0
    assert run["websockify"]["mb_per_s"] > 0
    assert run["ratio"] == pytest.approx(run["tessera"]["mb_per_s"] / run["websockify"]["mb_per_s"],
                                         rel=0.05)
    assert isinstance(out["met"], bool)


def test_slow_viewer_benchmark_paints_frames_on_the_throttled_link_and_samples_memory():
    out = bench("bench/slow_viewer.py", "--quick")
    ours = out["tessera"]
    assert ours["agent_frames"] > 30
    assert ours["fast_viewer"]["updates_received"] > 0
    slow = ours["slow_viewer"]
    assert slow["updates_received"] > 0
    assert 0 <= slow["frames_behind"]["p50"] <= slow["frames_behind"]["max"] <= ours["agent_frames"]
    # the throttle held the link near its rate (1 Mbit/s = 125 kB/s)
    assert 0 < ours["slow_link_bytes_per_s"] < 1.5 * out["rate_bits_per_s"] / 8
    assert ours["relay_memory"]["rss_mb_max"] > 0
    assert out["websockify"]["slow_viewer"]["updates_received"] > 0


def test_idle_agents_benchmark_keeps_every_quick_mode_agent_connected():
    out = bench("bench/idle_agents.py", "--quick")
    last = out["steps"][-1]
    assert last["agents"] == 200
    assert last["answering"] == 200 and last["closed"] == 0 and not last["failed_to_connect"]
    assert out["hold"]["answering"] == 200
    assert out["relay_rss_mb_without_agents"] > 0 and last["relay_kb_per_agent"] > 0
    assert out["stopped_by"] is None


def test_python_m_bench_gathers_the_chosen_benchmarks_into_one_object():
    out = bench("-m", "bench", "--json", "--quick", "--only", "tiles")
    assert list(out) == ["tiles"]
    assert out["tiles"]["tile_diff"] and "error" not in out["tiles"]
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "nonesuch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no benchmark nonesuch" in done.stderr


def test_a_failing_benchmark_is_reported_with_its_error_instead_of_ending_the_run(tmp_path):
    from bench.__main__ import run

    crashing = tmp_path / "crashing.py"
    crashing.write_text("import sys\nprint('the database is not there', file=sys.stderr)\nsys.exit(3)\n")
    chatty = tmp_path / "chatty.py"
    chatty.write_text("print('not JSON')\n")
    fine = tmp_path / "fine.py"
    fine.write_text("import json, sys\nprint(json.dumps({'args': sys.argv[1:]}))\n")
    assert run(crashing, []) == {"error": "exit status 3", "stderr": "the database is not there\n"}
    assert run(chatty, [])["error"].startswith("no JSON on stdout")
    assert run(fine, ["--quick"]) == {"args": ["--quick"]}
