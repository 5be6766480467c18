"""Benchmark: how many idle agents one relay process holds on this machine, and what each
costs. Prints one JSON document.

Run: ``.venv/bin/python bench/idle_agents.py [--steps 1000,2000,5000,10000] [--max N]
[--hold 30] [--quick]`` (``--quick``: 200 agents, a smoke test).

One real ``tessera run`` (subprocess, scratch SQLite database) and, in another process (this
file with ``--worker``), asyncio and the ``websockets`` library opening real websocket
connections to ``/relay/agent``, each with the bearer token of an enrolled device (the devices
are written straight into the database, a token each). Every agent sends HELLO and
SCREEN_INFO, then a PING whose PONG says the relay has admitted it; afterwards it only answers
the relay's pings. Nobody views, so no frames flow.

The number of agents is ramped through ``--steps``; at each step: how long the new
connections took (up to 200 opening at once), the relay's resident memory (VmRSS) and the
memory per agent over the relay without any, and a round of pings to every agent saying how
many still answer and how many were closed (with which codes). At the end every agent stays
connected for ``--hold`` seconds and is pinged again; the relay's CPU use while they idle is
measured over the hold. Both processes raise their open-file limit to the hard limit; the
limits, and what stopped the ramp if anything did, are in the output. Target on the way:
>= 10,000 agents.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import arguments, cpu_seconds, open_files_limit, raise_open_files, rss_mb  # noqa: E402

from agents.common import protocol as p  # noqa: E402
from tests.relay_harness import relay_server_process  # noqa: E402

CONNECTING_AT_ONCE = 200
TARGET = 10_000
HELLO = p.Hello(agent_version="0.1.0", os="Debian GNU/Linux 12", hostname="idle", user="").encode()
SCREEN = p.ScreenInfo((p.Monitor(0, 0, 0, 1920, 1080, primary=True),)).encode()


# ------------------------------------------------------------------------------ the load process
class Fleet:
    """The worker's agents: open connections, answer the relay's pings, count who is alive."""

    def __init__(self, url: str, tokens: list[str]) -> None:
        self.url, self.tokens = url, tokens
        self.open: dict[int, object] = {}
        self.closed: dict[int, int] = {}       # agent index -> close code
        self.pongs: dict[int, asyncio.Future] = {}
        self.failures: dict[str, int] = {}

    async def _serve(self, i: int, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for data in ws:
                kind = data[0]
                if kind == p.MsgType.PING:
                    await ws.send(p.Pong(p.decode(data).nonce).encode())
                elif kind == p.MsgType.PONG:
                    waiter = self.pongs.pop(i, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(True)
        except ConnectionClosed:
            pass
        self.open.pop(i, None)
        self.closed[i] = ws.close_code or 1006
        waiter = self.pongs.pop(i, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(False)

    async def _ping(self, i: int, ws, timeout: float) -> bool:
        waiter = self.pongs[i] = asyncio.get_running_loop().create_future()
        try:
            await ws.send(p.Ping(i).encode())
            return await asyncio.wait_for(waiter, timeout)
        except Exception:
            return False

    async def _connect(self, i: int, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        async with gate:
            try:
                ws = await connect(self.url, additional_headers={"Authorization": f"Bearer {self.tokens[i]}"},
                                   compression=None, max_size=1 << 20, open_timeout=120,
                                   ping_interval=None, close_timeout=2)
                await ws.send(HELLO)
                await ws.send(SCREEN)
            except Exception as err:
                name = type(err).__name__
                self.failures[name] = self.failures.get(name, 0) + 1
                return
            self.open[i] = ws
            asyncio.get_running_loop().create_task(self._serve(i, ws))
            await self._ping(i, ws, 120)  # admitted once the relay answers

    async def ramp(self, total: int) -> dict:
        start = len(self.open) + len(self.closed) + sum(self.failures.values())
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        t0 = time.perf_counter()
        await asyncio.gather(*(self._connect(i, gate) for i in range(start, total)))
        return {"connect_s": round(time.perf_counter() - t0, 2)}

    async def check(self, timeout: float = 60.0) -> dict:
        gate = asyncio.Semaphore(1000)

        async def one(i, ws):
            async with gate:
                return await self._ping(i, ws, timeout)
        answers = await asyncio.gather(*(one(i, ws) for i, ws in list(self.open.items())))
        codes: dict[str, int] = {}
        for code in self.closed.values():
            codes[str(code)] = codes.get(str(code), 0) + 1
        return {"answering": sum(answers), "closed": len(self.closed), "close_codes": codes,
                "failed_to_connect": dict(self.failures)}


async def worker(url: str, token_file: str) -> None:
    """Commands on stdin, one JSON answer a line on stdout: ``ramp N``, ``check``, ``quit``."""
    fleet = Fleet(url, Path(token_file).read_text().split())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "ramp":
            answer = await fleet.ramp(int(line[1]))
        elif line[0] == "check":
            answer = await fleet.check()
        else:
            break
        print(json.dumps(answer), flush=True)


# ------------------------------------------------------------------------------ the bench
def enrolled_devices(server, account_id: int, count: int) -> list[str]:
    """``count`` enrolled devices of the account, written in bulk; their agents' tokens."""
    from sqlalchemy import insert

    from app.extensions import db
    from app.models import Device, EnrolmentState, utcnow

    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    now = utcnow()
    rows = [{"account_id": account_id, "hardware_id": f"idle-{i}", "hostname": f"idle-{i:05d}",
             "token_hash": hashlib.sha256(t.encode()).hexdigest(),
             "enrolment_state": EnrolmentState.enrolled, "enrolled_at": now, "created_at": now}
            for i, t in enumerate(tokens)]
    with server.app.app_context():
        for start in range(0, count, 5000):
            db.session.execute(insert(Device), rows[start:start + 5000])
        db.session.commit()
    return tokens


class Load:
    """The worker process and its command line."""

    def __init__(self, url: str, token_file: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", url, token_file],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=raise_open_files)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load process ended (exit {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(60)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def run(steps: list[int], hold: float) -> dict:
    raise_open_files()
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as workdir:
        with relay_server_process(Path(workdir), popen_kw={"preexec_fn": raise_open_files}) as server:
            account_id, _, _ = server.account(permissions=())
            tokens = enrolled_devices(server, account_id, steps[-1])
            token_file = Path(workdir) / "tokens"
            token_file.write_text("\n".join(tokens))
            pid = server.process.pid
            time.sleep(1)
            base = rss_mb(pid)
            load = Load(f"{server.ws_url}/relay/agent", str(token_file))
            limits = {"relay_open_files": open_files_limit(pid),
                      "load_open_files": open_files_limit(load.process.pid)}
            out: list[dict] = []
            stopped_by = None
            try:
                for n in steps:
                    if n + 64 > min(limits.values()):
                        stopped_by = f"open-file limit {min(limits.values())} (hard limit of this machine)"
                        break
                    step = {"agents": n, **load.ask(f"ramp {n}")}
                    time.sleep(2)
                    rss = rss_mb(pid)
                    step.update(relay_rss_mb=rss, relay_kb_per_agent=round((rss - base) * 1024 / n, 1),
                                load_rss_mb=rss_mb(load.process.pid), **load.ask("check"))
                    out.append(step)
                    if step["answering"] < n:
                        stopped_by = f"only {step['answering']} of {n} agents answered"
                        break
                held = None
                if out and stopped_by is None:
                    cpu0, t0 = cpu_seconds(pid), time.monotonic()
                    time.sleep(hold)
                    idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
                    held = {"seconds": hold, "relay_cpu_share_while_idle": round(idle_cpu, 3),
                            "relay_rss_mb": rss_mb(pid), **load.ask("check")}
            finally:
                load.close()
    reached = max((s["answering"] for s in out), default=0)
    return {"relay_rss_mb_without_agents": base, "steps": out, "hold": held, "limits": limits,
            "stopped_by": stopped_by, "most_agents_answering": reached}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        raise_open_files()
        asyncio.run(worker(sys.argv[2], sys.argv[3]))
        return
    parser = arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="1000,2000,5000,10000")
    parser.add_argument("--max", type=int, default=None, help="stop the ramp at this many agents")
    parser.add_argument("--hold", type=float, default=30.0)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    hold = args.hold
    if args.quick:
        steps, hold = [100, 200], 3.0
    if args.max:
        steps = [s for s in steps if s < args.max] + [args.max]
    result = run(steps, hold)
    print(json.dumps({
        "what": "idle agents (real websockets from another process: HELLO, SCREEN_INFO, answering "
                "pings) held by one relay process, with its memory",
        **result, "target": f">= {TARGET} agents",
        "met": result["most_agents_answering"] >= TARGET and result["stopped_by"] is None,
    }, indent=2))


if __name__ == "__main__":
    main()
