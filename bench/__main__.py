"""``python -m bench --json``: every benchmark in ``bench/``, each in a subprocess of its own,
gathered into ONE JSON object ``{name: the JSON it printed}``. A benchmark that fails (exit
status, no JSON, timeout) is reported in the object as ``{"error": ..., "stderr": ...}``; the
others still run. Progress goes to stderr.

    python -m bench --json [--only relay,slow_viewer] [--quick]

``--quick`` asks each benchmark for a short run (its ``--quick``, or smaller sizes for those
that take sizes). ``make bench`` runs ``python -m bench --json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# In the order they run; a missing file (a benchmark still being written) is skipped.
BENCHMARKS = ("tiles", "wire", "relay", "slow_viewer", "idle_agents", "listing", "permissions",
              "console_latency")
QUICK = {
    "tiles": ["--repeat", "3", "--updates", "10"],
    "relay": ["--quick"],
    "slow_viewer": ["--quick"],
    "idle_agents": ["--quick"],
    "listing": ["--repeat", "3", "--naive-repeat", "1", "--sizes", "1000"],
    "permissions": ["--repeat", "3", "--naive-repeat", "1", "--sizes", "1000"],
    "console_latency": ["--quick"],
}
TIMEOUT = 3600


def quick_arguments(name: str, script: Path) -> list[str]:
    """The table's, else ``--quick`` when the script has such an option."""
    if name in QUICK:
        return QUICK[name]
    return ["--quick"] if '"--quick"' in script.read_text() else []


def run(script: Path, arguments: list[str]) -> dict:
    """What ``script`` printed, parsed; or what went wrong."""
    command = [sys.executable, str(script), *arguments]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        return {"error": f"timed out after {TIMEOUT} s", "stderr": _tail(expired.stderr)}
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}", "stderr": _tail(done.stderr)}
    try:
        return json.loads(done.stdout)
    except ValueError as err:
        return {"error": f"no JSON on stdout ({err})", "stdout": _tail(done.stdout),
                "stderr": _tail(done.stderr)}


def _tail(text, limit: int = 2000) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-limit:]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="JSON output (the only kind)")
    parser.add_argument("--only", default="", help="comma-separated names, e.g. relay,tiles")
    parser.add_argument("--quick", action="store_true", help="short runs")
    args = parser.parse_args()
    names = [n for n in BENCHMARKS if (HERE / f"{n}.py").exists()]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            parser.error(f"no benchmark {', '.join(unknown)} (there are: {', '.join(names)})")
        names = [n for n in names if n in wanted]
    results = {}
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        script = HERE / f"{name}.py"
        results[name] = run(script, quick_arguments(name, script) if args.quick else [])
        state = "failed" if "error" in results[name] else "done"
        print(f"bench: {name} {state} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
