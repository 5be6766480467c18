"""Benchmark: bytes per second the relay forwards from one agent to one viewer, next to
websockify (the websocket-to-TCP proxy noVNC uses) forwarding the same bytes on the same
machine in the same run. Prints one JSON document.

Run: ``.venv/bin/python bench/relay.py [--sizes 256,1024] [--seconds 8] [--quick]``
(websockify from the ``bench`` extra: ``pip install -e '.[bench]'``).

* ``tessera``: a real ``tessera run`` (subprocess, scratch SQLite database); an agent over a
  real websocket (HELLO, SCREEN_INFO, a key frame when asked) sends FRAME_UPDATEs of one
  incompressible RAW rectangle each (``size`` KiB: 512x512 RGBA for 1 MiB), uncompressed, into
  the four quadrants of a screen twice the rectangle's side, keeping at most 2 unacknowledged
  as the protocol says; one signed-in viewer (``?compress=none``) acks each update as soon as
  it has it. Measured: the viewer's received FRAME_UPDATE bytes per second over ``--seconds``
  after a one-second warm-up, the agent's, and the relay process's CPU time per GB forwarded.
* ``websockify``: ``websockify --run-once`` forwarding a websocket client's binary messages of
  the same size to a plain TCP sink, which answers a cumulative 4-byte count per whole message;
  the client keeps at most 2 messages unanswered, the same window. Measured: the sink's bytes
  per second, and websockify's CPU time per GB.

The clients of both (agent + viewer, websocket client + sink) are threads of this process; the
websocket ones are ``live.RawWebsocket`` (zero mask key, messages read into one reused buffer),
so the clients cost little and the same on both sides. The machine's cores are shared by
proxy and clients, so ``proxy_cpu_s_per_gb`` (the proxy's CPU time per GB forwarded) is the
steadier comparison. ``ratio`` is Tessera's bytes/s over websockify's; the target is >= 2.
"""
from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import RawWebsocket, arguments, cpu_seconds, relay_stage, websockify  # noqa: E402

from agents.common import protocol as p  # noqa: E402
from tests.relay_harness import free_port  # noqa: E402

FRAME_HEAD = 7  # type, flags, screen, seq u32: an uncompressed FRAME_UPDATE's header
WINDOW = 2      # frame updates in flight, both directions of the relay (docs/protocol.md)
TARGET = 2.0


def rect_side(size_kib: int) -> int:
    side = int((size_kib * 1024 / 4) ** 0.5)
    if side * side * 4 != size_kib * 1024:
        raise SystemExit(f"bench/relay.py: {size_kib} KiB is not a square RGBA rectangle")
    return side


def quadrant_payloads(side: int) -> list[bytes]:
    """The rectangle bytes of one RAW update per quadrant, random (incompressible) pixels."""
    import os

    return [p.encode_rects([p.RawRect(x, y, side, side, os.urandom(side * side * 4))])
            for y in (0, side) for x in (0, side)]


class Meter:
    """Bytes counted between ``start()`` and ``stop()``; the rest is warm-up and wind-down."""

    def __init__(self) -> None:
        self.counting = False
        self.bytes = 0
        self.messages = 0
        self.started = self.stopped = 0.0

    def add(self, n: int) -> None:
        if self.counting:
            self.bytes += n
            self.messages += 1

    def start(self) -> None:
        self.started = time.perf_counter()
        self.counting = True

    def stop(self) -> None:
        self.counting = False
        self.stopped = time.perf_counter()

    @property
    def per_second(self) -> float:
        return self.bytes / (self.stopped - self.started)


def measure(meter: Meter, pid: int, warmup: float, seconds: float, done: threading.Event,
            errors: list, also: tuple = ()) -> dict:
    """Let the clients run ``warmup`` seconds, then count ``meter`` (and ``also``) and the
    proxy's CPU time for ``seconds``; then tell the clients to stop."""
    time.sleep(warmup)
    cpu0 = cpu_seconds(pid)
    for m in (meter, *also):
        m.start()
    time.sleep(seconds)
    for m in (meter, *also):
        m.stop()
    cpu = cpu_seconds(pid) - cpu0
    done.set()
    if errors:
        raise errors[0]
    if not meter.bytes:
        raise RuntimeError("nothing was forwarded")
    return {"mb_per_s": round(meter.per_second / 1e6, 1), "messages": meter.messages,
            "proxy_cpu_s_per_gb": round(cpu / (meter.bytes / 1e9), 2),
            "proxy_cpu_share": round(cpu / (meter.stopped - meter.started), 2)}


def _guard(errors: list, fn):
    def run():
        try:
            fn()
        except Exception as err:  # reported by measure(); the thread must not die silently
            errors.append(err)
    return run


# ------------------------------------------------------------------------------ Tessera's relay
def tessera(size_kib: int, warmup: float, seconds: float) -> dict:
    side = rect_side(size_kib)
    payloads = quadrant_payloads(side)
    with relay_stage() as stage:
        ws_url = stage.server.ws_url
        agent = RawWebsocket(f"{ws_url}/relay/agent", {"Authorization": f"Bearer {stage.token}"})
        agent.send(p.Hello(agent_version="0.1.0", os="bench", hostname="bench", user="").encode())
        agent.send(p.ScreenInfo((p.Monitor(0, 0, 0, 2 * side, 2 * side, primary=True),)).encode())
        viewer = RawWebsocket(f"{ws_url}/relay/devices/{stage.device_id}/view?compress=none",
                              {"Cookie": stage.cookie})
        while agent.recv()[0] != p.MsgType.REQUEST_KEYFRAME:
            pass
        key = p.encode_rects([p.RawRect(0, 0, 2 * side, 2 * side, b"".join(
            payloads[q][11:] for q in range(4)))])  # any pixels: the quadrants' noise
        agent.send(p.encode_frame_update(0, 1, key, keyframe=True))

        meter, sent, done, errors = Meter(), Meter(), threading.Event(), []

        def agent_loop() -> None:
            seq = acked = 1
            while not done.is_set():
                while seq - acked < WINDOW:
                    seq += 1
                    message = p.encode_frame_update(0, seq, payloads[seq % 4])
                    agent.send(message)
                    sent.add(len(message))
                data = agent.recv()
                if data[0] == p.MsgType.ACK:
                    acked = struct.unpack_from("<I", data, 1)[0]

        def viewer_loop() -> None:
            while not done.is_set():
                data = viewer.recv()
                if data[0] == p.MsgType.FRAME_UPDATE:
                    meter.add(len(data))
                    viewer.send(p.Ack(struct.unpack_from("<I", data, 3)[0]).encode())

        threads = [threading.Thread(target=_guard(errors, fn), daemon=True)
                   for fn in (agent_loop, viewer_loop)]
        for thread in threads:
            thread.start()
        result = measure(meter, stage.pid, warmup, seconds, done, errors, also=(sent,))
        for peer in (agent, viewer):
            peer.close()
        for thread in threads:
            thread.join(10)
    result["agent_mb_per_s"] = round(sent.bytes / (sent.stopped - sent.started) / 1e6, 1)
    return result


# ------------------------------------------------------------------------------ the peer
def peer(size_kib: int, warmup: float, seconds: float) -> dict:
    message = bytes(FRAME_HEAD) + quadrant_payloads(rect_side(size_kib))[0]
    size = len(message)
    meter, done, errors = Meter(), threading.Event(), []
    listener = socket.create_server(("127.0.0.1", free_port()))

    def sink() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = memoryview(bytearray(1 << 20))
            total = answered = 0
            while True:
                n = conn.recv_into(buf)
                if not n:
                    return
                total += n
                meter.add(n)
                whole = total // size
                if whole > answered:
                    answered = whole
                    conn.sendall(struct.pack("<I", whole))

    with listener, websockify(listener.getsockname()[1]) as (url, pid):
        threading.Thread(target=_guard(errors, sink), daemon=True).start()
        ws = RawWebsocket(url)

        def client() -> None:
            sent = acked = 0
            pending = b""
            while not done.is_set():
                while sent - acked < WINDOW:
                    ws.send(message)
                    sent += 1
                pending += bytes(ws.recv())
                whole = len(pending) // 4 * 4
                if whole:
                    acked = struct.unpack_from("<I", pending, whole - 4)[0]
                    pending = pending[whole:]

        thread = threading.Thread(target=_guard(errors, client), daemon=True)
        thread.start()
        result = measure(meter, pid, warmup, seconds, done, errors)
        ws.close()
        thread.join(10)
    result["messages"] = meter.bytes // size
    return result


def main() -> None:
    parser = arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,1024", help="message sizes in KiB")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    seconds, warmup = args.seconds, 1.0
    if args.quick:
        sizes, seconds, warmup = [1024], 2.0, 0.5
    results = {}
    for size in sizes:
        ours = tessera(size, warmup, seconds)
        theirs = peer(size, warmup, seconds)
        results[f"{size}KiB"] = {
            "tessera": ours, "websockify": theirs,
            "ratio": round(ours["mb_per_s"] / theirs["mb_per_s"], 2),
        }
    ratios = [r["ratio"] for r in results.values()]
    print(json.dumps({
        "what": "bytes/s forwarded agent -> relay -> viewer (uncompressed RAW updates, 2 in "
                "flight) vs websockify forwarding websocket -> TCP, same sizes and window",
        "seconds": seconds, "sizes": results,
        "target": f">= {TARGET}x websockify", "met": min(ratios) >= TARGET,
    }, indent=2))


if __name__ == "__main__":
    main()
