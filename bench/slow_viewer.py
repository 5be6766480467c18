"""Benchmark: a viewer on a 1 Mbit/s link while the screen changes continuously, through the
relay, next to the same viewer behind plain forwarding (websockify) on the same machine in the
same run. Prints one JSON document.

Run: ``.venv/bin/python bench/slow_viewer.py [--seconds 30] [--rate 1000000] [--quick]``.

The screen: a programmatic agent of 1280x720 sends a frame every 33 ms: a 256x192 area (12
tiles of 64x64, fresh text-like pixels every frame: a white ground with 15 % dark dots; the
agent's zstd stream makes the 192 KiB about 14 KB) and a marker tile at (0, 0) whose solid
colour is the frame's number. A viewer knows which agent frame the content it has painted
comes from by reading that pixel, and the agent's clock says when that frame was made. About
430 kB/s of updates for a link of 125 kB/s: the slow viewer cannot see every frame.

* ``tessera``: a real ``tessera run``; a fast viewer reading at full speed and a slow viewer
  whose bytes from the relay pass through a throttling TCP proxy (a token bucket of ``--rate``
  bits/s, 1 Mbit/s by default; its acks go back unthrottled). Both paint every update and ack
  it, as the protocol asks. Every 100 ms: how far behind each viewer's painted content is, in
  agent frames and in seconds, and the relay process's resident memory (VmRSS).
* ``websockify`` (the peer): the agent's same frame updates, length-prefixed, written as they
  are made to a TCP connection that websockify forwards to the slow viewer (the same throttle,
  the same decoding and painting). Plain forwarding has no frames to skip: whatever the link
  cannot carry queues in the proxy.

Reported per viewer: ``frames_behind`` (newest agent frame minus the frame painted; p50, p95,
max), ``seconds_behind`` (age of the painted content), ``updates_received``, and for the slow
viewers ``own_updates_behind``: ``seconds_behind`` over the mean time between two updates
reaching that viewer, i.e. how many of *its own* updates stale it is (never below 1: an update
takes that long to cross the link). Memory: the relay's (or websockify's) RSS, mean of the
first and of the last quarter of the samples, the growth between them, and ``flat`` when that
is at most 2 MB. Targets: the slow viewer <= 1 frame behind, flat memory.
"""
from __future__ import annotations

import json
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import percentile  # noqa: E402
from live import arguments, relay_stage, rss_mb, websockify  # noqa: E402

from agents.common import protocol as p  # noqa: E402
from tests.relay_harness import free_port  # noqa: E402

W, H, TILE = 1280, 720, 64
AREA = (320, 192, 4, 3)  # x, y, columns, rows of tiles
FRAME_EVERY = 0.033
SAMPLE_EVERY = 0.1
WINDOW = 2  # unacknowledged updates an agent may have (docs/protocol.md)
FLAT_MB = 2.0  # growth between the first and the last quarter that still counts as flat


# --------------------------------------------------------------------------- the changing screen
class TextTiles:
    """Fresh RGBA tiles that look like small print: white with about 15 % dark pixels of four
    inks; a seeded sequence, so both runs paint the same frames."""

    INKS = np.array([(255, 255, 255, 255), (20, 20, 20, 255), (40, 40, 90, 255),
                     (90, 30, 30, 255), (60, 60, 60, 255)], np.uint8)

    def __init__(self, seed: int = 3) -> None:
        self.rng = np.random.default_rng(seed)

    def next(self) -> bytes:
        dots = self.rng.random((TILE, TILE)) < 0.15
        ink = self.rng.integers(1, len(self.INKS), (TILE, TILE))
        return self.INKS[np.where(dots, ink, 0)].tobytes()


def marker(frame: int) -> bytes:
    return bytes((frame & 0xFF, frame >> 8 & 0xFF, frame >> 16 & 0xFF, 255))


def painted_frame(framebuffer) -> int:
    return framebuffer[0] | framebuffer[1] << 8 | framebuffer[2] << 16


class Screen:
    """Frame ``k``'s rectangles (asked for in order), the same in both runs; when each frame
    was made."""

    def __init__(self) -> None:
        self.tiles = TextTiles()
        self.made: dict[int, float] = {}
        self.latest = 0

    def rects(self, k: int) -> list:
        x0, y0, cols, rows = AREA
        out = [p.FillRect(0, 0, TILE, TILE, marker(k))]
        for i in range(cols * rows):
            out.append(p.RawRect(x0 + i % cols * TILE, y0 + i // cols * TILE, TILE, TILE,
                                 self.tiles.next()))
        return out

    def made_now(self, k: int) -> None:
        self.made[k] = time.monotonic()
        self.latest = k


class Throttle:
    """A TCP proxy to 127.0.0.1:``upstream``: the client's bytes go up at once, the upstream's
    come down at ``rate`` bits/s (a token bucket, read only as tokens allow, so the sender sees
    the back-pressure of a slow link)."""

    CHUNK = 4096
    RECEIVE_BUFFER = 64 * 1024

    def __init__(self, upstream: int, rate: float) -> None:
        self.upstream, self.rate = upstream, rate / 8
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        self.down_bytes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        server = socket.socket()
        # A small fixed receive buffer, as on a slow link: what cannot go down the link waits
        # in the sender (and shows in its memory), not in a 32 MB autotuned loopback buffer.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RECEIVE_BUFFER)
        server.connect(("127.0.0.1", self.upstream))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._up, args=(client, server), daemon=True).start()
        threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    @staticmethod
    def _up(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def _down(self, src, dst) -> None:
        tokens, last = 0.0, time.monotonic()
        try:
            while True:
                now = time.monotonic()
                tokens = min(4 * self.CHUNK, tokens + (now - last) * self.rate)
                last = now
                if tokens < self.CHUNK:
                    time.sleep((self.CHUNK - tokens) / self.rate)
                    continue
                data = src.recv(int(tokens))
                if not data:
                    break
                tokens -= len(data)
                self.down_bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def close(self) -> None:
        self.listener.close()


# --------------------------------------------------------------------------- measuring
class Watch:
    """What one viewer has painted: the agent frame of its content, and when updates came."""

    def __init__(self) -> None:
        self.frame = 0
        self.arrivals: list[float] = []
        self.behind: list[int] = []
        self.age: list[float] = []

    def painted(self, frame: int) -> None:
        self.frame = frame
        self.arrivals.append(time.monotonic())

    def sample(self, screen: Screen, now: float) -> None:
        self.behind.append(screen.latest - self.frame)
        self.age.append(now - screen.made.get(self.frame, now))

    def report(self, since: float, slow: bool) -> dict:
        arrivals = [t for t in self.arrivals if t >= since]
        out = {"updates_received": len(arrivals),
               "frames_behind": summary(self.behind, 0),
               "seconds_behind": summary(self.age, 2)}
        if slow and len(arrivals) >= 2:
            gap = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
            out["seconds_between_updates"] = round(gap, 2)
            out["own_updates_behind"] = summary([a / gap for a in self.age], 1)
        return out


def summary(values: list, digits: int) -> dict:
    def r(v):
        return round(v, digits) if digits else int(v)
    return {"p50": r(statistics.median(values)), "p95": r(percentile(values, 95)),
            "max": r(max(values))}


def memory(samples: list[float]) -> dict:
    """First and last quarter of the RSS samples (one every SAMPLE_EVERY seconds)."""
    q = max(1, len(samples) // 4)
    first, last = statistics.mean(samples[:q]), statistics.mean(samples[-q:])
    minutes = max(1, len(samples) - q) * SAMPLE_EVERY / 60
    return {"rss_mb_first_quarter": round(first, 1), "rss_mb_last_quarter": round(last, 1),
            "growth_mb": round(last - first, 1),
            "growth_mb_per_min": round((last - first) / minutes, 1),
            "rss_mb_max": max(samples), "flat": last - first <= FLAT_MB}


def run_and_sample(screen: Screen, watches: dict, pid: int, seconds: float, warmup: float,
                   errors: list, stop: threading.Event) -> tuple[list[float], float]:
    time.sleep(warmup)
    since = time.monotonic()
    rss = []
    while time.monotonic() - since < seconds:
        if errors:
            raise errors[0]
        now = time.monotonic()
        for watch in watches.values():
            watch.sample(screen, now)
        rss.append(rss_mb(pid))
        time.sleep(SAMPLE_EVERY)
    stop.set()
    if errors:
        raise errors[0]
    return rss, since


def _guard(errors: list, stop: threading.Event, fn):
    def run():
        try:
            fn()
        except Exception as err:
            if not stop.is_set():
                errors.append(err)
    return run


# --------------------------------------------------------------------------- Tessera's relay
def tessera(seconds: float, warmup: float, rate: float) -> dict:
    screen = Screen()
    with relay_stage() as stage:
        agent = stage.agent()
        agent.hello()
        agent.screen_info((W, H))
        agent.sync()
        fast = stage.viewer()
        throttle = Throttle(int(stage.server.url.rsplit(":", 1)[1]), rate)
        slow = stage.viewer(via=f"ws://127.0.0.1:{throttle.port}")
        for viewer in (fast, slow):
            viewer.start()
        agent.expect(p.RequestKeyframe)
        agent.update([p.FillRect(0, 0, W, H, b"\xff\xff\xff\xff")] + screen.rects(0), keyframe=True)
        screen.made_now(0)
        watches = {"fast": Watch(), "slow": Watch()}
        errors, stop = [], threading.Event()

        def agent_loop() -> None:
            acked, k, due = agent.seq, 0, time.monotonic()
            while not stop.is_set():
                due += FRAME_EVERY
                time.sleep(max(0.0, due - time.monotonic()))
                while agent.seq - acked >= WINDOW or acked < agent.seq:
                    try:
                        msg = agent.recv(timeout=0 if agent.seq - acked < WINDOW else 5)
                    except TimeoutError:
                        break
                    if isinstance(msg, p.Ack):
                        acked = msg.seq
                k += 1
                agent.update(screen.rects(k))
                screen.made_now(k)

        def viewer_loop(viewer, watch: Watch) -> None:
            while not stop.is_set():
                msg = viewer.recv(timeout=30)
                if isinstance(msg, p.FrameUpdate):
                    watch.painted(painted_frame(viewer.frames[0]))
                    viewer.updates.clear()

        threads = [threading.Thread(target=_guard(errors, stop, agent_loop), daemon=True)]
        threads += [threading.Thread(target=_guard(errors, stop, lambda v=v, w=w: viewer_loop(v, w)),
                                     daemon=True)
                    for v, w in ((fast, watches["fast"]), (slow, watches["slow"]))]
        for thread in threads:
            thread.start()
        rss, since = run_and_sample(screen, watches, stage.pid, seconds, warmup, errors, stop)
        for thread in threads[:1]:
            thread.join(10)
        for peer in (agent, fast, slow):
            peer.close()
        throttle.close()
    return {"agent_frames": screen.latest,
            "fast_viewer": watches["fast"].report(since, slow=False),
            "slow_viewer": watches["slow"].report(since, slow=True),
            "slow_link_bytes_per_s": round(throttle.down_bytes / (seconds + warmup)),
            "relay_memory": memory(rss)}


# --------------------------------------------------------------------------- the peer
def peer(seconds: float, warmup: float, rate: float) -> dict:
    """The agent's updates, length-prefixed on a TCP connection, through websockify and the
    throttle to a viewer that decodes and paints them in order."""
    from websockets.sync.client import connect

    screen = Screen()
    errors, stop = [], threading.Event()
    watch = Watch()
    sent = 0  # the agent's compressed frame updates after the key frame, bytes
    listener = socket.create_server(("127.0.0.1", free_port()))

    def source() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        compressor = p.StreamCompressor()
        nonlocal sent
        due = time.monotonic()
        k = 0
        first = [p.FillRect(0, 0, W, H, b"\xff\xff\xff\xff")]
        with conn:
            while not stop.is_set():
                message = p.FrameUpdate(0, k + 1, tuple(first + screen.rects(k)), k == 0).encode(compressor)
                first = []
                conn.sendall(struct.pack("<I", len(message)) + message)
                if k:
                    sent += len(message)
                screen.made_now(k)
                k += 1
                due += FRAME_EVERY
                time.sleep(max(0.0, due - time.monotonic()))

    with listener, websockify(listener.getsockname()[1]) as (url, pid):
        throttle = Throttle(int(url.rsplit(":", 1)[1].rstrip("/")), rate)
        threading.Thread(target=_guard(errors, stop, source), daemon=True).start()

        def viewer_loop() -> None:
            with connect(f"ws://127.0.0.1:{throttle.port}/", max_size=None, compression=None,
                         open_timeout=10) as ws:
                decompressor = p.StreamDecompressor()
                framebuffer = bytearray(W * H * 4)
                buf = b""
                while not stop.is_set():
                    buf += ws.recv(timeout=30)
                    while len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from("<I", buf)[0]:
                        n = struct.unpack_from("<I", buf)[0]
                        update = p.decode(buf[4:4 + n], decompressor)
                        buf = buf[4 + n:]
                        p.apply_rects(framebuffer, W, H, update.rects)
                        watch.painted(painted_frame(framebuffer))

        threading.Thread(target=_guard(errors, stop, viewer_loop), daemon=True).start()
        rss, since = run_and_sample(screen, {"slow": watch}, pid, seconds, warmup, errors, stop)
        throttle.close()
    return {"agent_frames": screen.latest,
            "agent_kb_per_frame": round(sent / max(1, screen.latest) / 1000, 1),
            "slow_viewer": watch.report(since, slow=True),
            "slow_link_bytes_per_s": round(throttle.down_bytes / (seconds + warmup)),
            "proxy_memory": memory(rss)}


def main() -> None:
    parser = arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=1_000_000, help="the slow link, bits/s")
    args = parser.parse_args()
    seconds, warmup = (4.0, 1.0) if args.quick else (args.seconds, 2.0)
    ours = tessera(seconds, warmup, args.rate)
    theirs = peer(seconds, warmup, args.rate)
    slow = ours["slow_viewer"]
    print(json.dumps({
        "what": "a viewer throttled to the given rate while 13 tiles of a 1280x720 screen change "
                "every 33 ms: how stale its picture is and the relay's memory, vs plain "
                "forwarding through websockify",
        "seconds": seconds, "rate_bits_per_s": args.rate,
        "tessera": ours, "websockify": theirs,
        "target": "slow viewer <= 1 frame behind, flat memory",
        "met": {"frames_behind_p95_le_1": slow["frames_behind"]["p95"] <= 1,
                "flat_memory": ours["relay_memory"]["flat"]},
    }, indent=2))


if __name__ == "__main__":
    main()
