"""Makes ``bench/assets/desktop_capture.json`` and ``desktop_capture.zst``: a real desktop,
captured the way the Host agent captures it, with a scripted change sequence, for
``bench/tiles.py`` (``load_desktop_capture``). Run once by a developer when the asset should
change; CI and the benchmark only read what it wrote.

    .venv/bin/python bench/assets/make_desktop_capture.py [--photo chelsea.png] [--out DIR]

It needs Xvfb, Debian's Chromium, xterm, xdotool and xsetroot (``scripts/install-system-deps``)
and the photograph: ``--photo``, else ``skimage/data/chelsea.png`` is taken from the
scikit-image wheel (``pip download scikit-image==0.26.0 --no-deps`` into a temporary
directory; scikit-image is not installed) and checked against its SHA-256. The photo is CC0
(``bench/assets/README.md``).

What happens:

* Xvfb 1920x1080x24 (no window manager), a solid root colour.
* Chromium (a real window, not headless: ``--app=file://...``, 1380x1080 at the top left)
  showing a page generated here: a header, an article (paragraphs, the photo in a figure, a code
  block, a table, a list), and a side column with a form (inputs, a select, a textarea with
  ``autofocus``) and a status table. Beside it, an xterm (DejaVu Sans Mono, anti-aliased) with
  a listing, and a small second xterm, the window that will be moved.
* The sequence, one captured frame after each step (the screen is grabbed until it stays the
  same for three grabs 60 ms apart, so a frame is what Chromium finished drawing): typing
  ``TYPED`` into the textarea one key at a time, scrolling the page with the mouse wheel, then
  with Page Down, then moving the small xterm across the page in steps.
* Capture: ``agents.host.capture.X11Capture`` (mss, XShm; the fourth byte set to 255), as the
  agent does.
* Storage: ``agents.host.frames.ScreenEncoder`` turns the frames into ``FRAME_UPDATE``
  rectangle bytes (``docs/protocol.md``: a key frame, then per step COPY / FILL / PALETTE / RAW
  rectangles, lossless, RGBA); all of them, one after the other, go into one zstd frame (level
  19, long window). The JSON manifest lists each frame's step, its length in that stream and
  the SHA-256 of the BGRA frame; before anything is written the stream is decoded with
  ``bench.tiles.load_desktop_capture``'s decoder (``agents.common.protocol.apply_rects``) and
  every frame compared with the capture byte for byte, and again after writing.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import html
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

from agents.common.protocol import encode_rects  # noqa: E402
from agents.host.capture import X11Capture  # noqa: E402
from agents.host.frames import ScreenEncoder  # noqa: E402
from bench.tiles import CAPTURE_MANIFEST, decode_capture  # noqa: E402
from tests.x11_harness import start_xvfb, stop_process  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
SKIMAGE = "scikit-image==0.26.0"
PHOTO_IN_WHEEL = "skimage/data/chelsea.png"
PHOTO_SHA256 = "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"
PHOTO_SHOWN = (300, 200)         # the photo's size on the page (Chromium scales it down)
TYPED = "Screen flickers after resume; call at 15:30"
WHEEL_STEPS = 6
PAGE_DOWNS = 1
MOVE_STEPS = 14
ROOT_COLOUR = "#3b4252"
CHROMIUM_GEOMETRY = (0, 0, 1380, 1080)
POINTER_ON_TEXT = (420, 760)     # over a paragraph: the wheel scrolls the page, a click blurs


# ---------------------------------------------------------------------------- the page

ARTICLE = [
    ("p", "A remote support session starts long before the first pixel crosses the wire. The "
          "technician picks a device from the list, the relay checks the permissions of the "
          "account, and the agent on the far side is told that somebody wants to look. What "
          "happens next depends on the policy of the device: an unattended server shows its "
          "screen at once, a laptop on somebody's desk first asks the person sitting there."),
    ("p", "Most of what a support technician looks at is text: a browser with a help page, an "
          "e-mail client, a terminal with a log. Text changes in small places (a character, a "
          "line, a blinking caret) and moves in large ones (a scroll, a window dragged across "
          "the screen). A good encoding sends the small changes as small messages and the large "
          "moves as a copy of what the viewer already has."),
    ("figure", None),
    ("h2", "Before you connect"),
    ("p", "Check that the device is online and that your role allows the kind of access you "
          "need. Viewing the screen, sending keys and the mouse, the clipboard, and the power "
          "actions are separate permissions; an administrator grants them per group of devices. "
          "If the person at the device has to accept the session, tell them on the phone what "
          "they will see: a small window with your name and the name of your organisation."),
    ("p", "On a slow link, close what you do not need. A video playing in a corner of the screen "
          "costs more than everything else together, and so does a photographic desktop "
          "background that changes with every window you move. Dark themes and flat colours "
          "compress best; anti-aliased text is the common case the encoder is built around."),
    ("code", "$ tessera-agent --server https://support.example.org \\\n"
             "      --enroll-key 7Q4M-2XKD-9PLA --state-dir /var/lib/tessera\n"
             "tessera-agent: enrolled as device 4127 (hostname ws-accounting-03)\n"
             "tessera-agent: display :0 (1920x1080), DAMAGE available, XShm available\n"
             "tessera-agent: connected; waiting for a viewer\n\n"
             "def on_frame(encoder, frame):\n"
             "    rects = encoder.diff(frame)          # COPY first, then dirty tiles\n"
             "    for payload in split_payloads(rects):\n"
             "        send(FrameUpdate(screen=0, seq=next(seq), payload=payload))"),
    ("h2", "Devices in this group"),
    ("table", [("Device", "User", "Operating system", "Last seen", "Status"),
               ("ws-accounting-01", "m.keller", "Debian 12", "2 min ago", "online"),
               ("ws-accounting-02", "j.ferreira", "Ubuntu 24.04", "5 min ago", "online"),
               ("ws-accounting-03", "a.nowak", "Debian 12", "just now", "in session"),
               ("lab-printer-gw", "-", "Debian 11", "1 h ago", "idle"),
               ("build-runner-7", "ci", "Debian 12", "3 s ago", "online"),
               ("reception-kiosk", "kiosk", "Fedora 40", "yesterday", "offline"),
               ("ws-design-11", "l.okafor", "Ubuntu 22.04", "12 min ago", "online"),
               ("nas-backup", "-", "Debian 12", "4 min ago", "online")]),
    ("p", "The list above is sorted by name; the filter box at the top of the page narrows it by "
          "any of the columns, and the address of the page keeps the filter, so a link you send "
          "to a colleague shows the same rows. Devices that have not been seen for thirty days "
          "are marked stale and can be removed in one step by an administrator."),
    ("h2", "During the session"),
    ("ol", ["Say what you are about to do before you do it; the person at the device sees the "
            "pointer move and windows open.",
            "Use the clipboard panel rather than typing long commands: it is faster and it "
            "keeps the text exact.",
            "When you need to restart the device, use the power menu: the session comes back "
            "by itself when the agent reconnects.",
            "Before you leave, close what you opened and say so. The session ends for both of "
            "you when you press Disconnect."]),
    ("p", "Everything you do is written to the audit log: who connected, when, to which device, "
          "with which permissions, and how long the session lasted. The log cannot be edited; it "
          "is kept for as long as the retention policy of the account says and then removed in "
          "one piece, so that no half of a session is ever left behind."),
    ("p", "If the picture freezes, wait a few seconds before you reconnect. The relay keeps the "
          "newest picture of every screen and sends a slow viewer only what is new when its last "
          "update has arrived, so a bad link makes the picture late but never wrong. A viewer "
          "that reconnects gets the whole screen at once."),
    ("h2", "After the session"),
    ("p", "Write a short note in the ticket: what you found, what you changed, and what the "
          "person should watch for. The note is linked to the session in the audit log, so the "
          "next technician who opens the device sees both. Unattended access stays available for "
          "as long as the device is in a group you may reach; on-demand access ends with the "
          "session and needs a new code next time."),
    ("p", "Questions about this handbook go to the support team lead. Suggestions for better "
          "wording are welcome, and so are screenshots of the places where the text and the "
          "product disagree: the product is usually right, the handbook is fixed within a week."),
    ("h2", "Keyboard shortcuts in the viewer"),
    ("table", [("Keys", "What they do"),
               ("Ctrl+Alt+Shift+F", "full screen on and off"),
               ("Ctrl+Alt+Shift+C", "open the clipboard panel"),
               ("Ctrl+Alt+Shift+S", "next screen of the device"),
               ("Ctrl+Alt+Shift+D", "disconnect"),
               ("Ctrl+Alt+Del", "sent as a key combination, not handled locally")]),
    ("p", "Shortcuts that the browser itself uses (closing a tab, opening a new window) cannot "
          "be sent to the device from a normal browser window; use full screen, where the "
          "viewer receives them, or the key menu in the toolbar."),
]

CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 "DejaVu Sans", sans-serif; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #f0f3f6; padding: 14px 28px; font-size: 18px; }
header small { color: #9aa4ae; margin-left: 12px; font-size: 13px; }
.page { display: grid; grid-template-columns: 860px 420px; gap: 28px; padding: 24px 28px; }
article { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 32px 24px; }
h1 { font-size: 26px; margin: 16px 0 8px; }
h2 { font-size: 20px; margin: 26px 0 8px; border-bottom: 1px solid #d8dee4; padding-bottom: 4px; }
figure { margin: 14px 0; }
figure img { display: block; border-radius: 4px; }
figcaption { font-size: 12px; color: #57606a; margin-top: 4px; }
pre { background: #0d1117; color: #c9d1d9; padding: 12px 14px; border-radius: 6px;
      font: 13px/1.45 "DejaVu Sans Mono", monospace; overflow: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 10px 0; }
th, td { border: 1px solid #d0d7de; padding: 5px 9px; text-align: left; }
th { background: #f0f3f6; }
tr:nth-child(even) td { background: #f8fafc; }
aside section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 14px 18px;
                margin-bottom: 20px; }
aside h3 { margin: 0 0 10px; font-size: 16px; }
label { display: block; font-size: 13px; font-weight: bold; margin: 10px 0 4px; }
input, select, textarea { width: 100%; font: 14px "DejaVu Sans", sans-serif; padding: 6px 8px;
                          border: 1px solid #8c959f; border-radius: 4px; background: #fff; }
textarea { height: 120px; resize: none; }
button { margin-top: 12px; background: #1f883d; color: #fff; border: 0; border-radius: 6px;
         padding: 8px 16px; font: bold 14px "DejaVu Sans", sans-serif; }
.ok { color: #1a7f37; font-weight: bold; } .warn { color: #9a6700; font-weight: bold; }
"""


def page_html(photo_name: str, photo_size: tuple[int, int]) -> str:
    """The text-heavy page Chromium shows (no script: the browser is driven from outside)."""
    e = html.escape
    body = []
    for kind, content in ARTICLE:
        if kind == "p":
            body.append(f"<p>{e(content)}</p>")
        elif kind == "h2":
            body.append(f"<h2>{e(content)}</h2>")
        elif kind == "code":
            body.append(f"<pre><code>{e(content)}</code></pre>")
        elif kind == "ol":
            body.append("<ol>" + "".join(f"<li>{e(item)}</li>" for item in content) + "</ol>")
        elif kind == "table":
            head, *rows = content
            body.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                                  for row in rows) + "</table>")
        else:
            w, h = photo_size
            body.append(f'<figure><img src="{e(photo_name)}" width="{w}" height="{h}" alt="A cat">'
                        "<figcaption>Chelsea the cat. Photo: Stefan van der Walt, CC0 "
                        "(scikit-image sample data).</figcaption></figure>")
    status = [("Relay", "ok", "operational"), ("Agents online", "ok", "1,284"),
              ("Sessions now", "ok", "37"), ("Mail delivery", "warn", "delayed"),
              ("Directory sync", "ok", "12 min ago")]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Support handbook</title>
<style>{CSS}</style></head>
<body>
<header>Tessera support handbook <small>Remote sessions · version 3.2</small></header>
<div class="page">
<article><h1>Helping someone at a distance</h1>
{chr(10).join(body)}
</article>
<aside>
<section><h3>Open a ticket</h3>
<form>
<label for="name">Your name</label><input id="name" value="Ana Nowak">
<label for="device">Device</label>
<select id="device"><option>ws-accounting-03</option><option>ws-design-11</option></select>
<label for="what">What is wrong?</label>
<textarea id="what" autofocus></textarea>
<button type="button">Send</button>
</form></section>
<section><h3>Service status</h3>
<table>{"".join(f'<tr><td>{e(a)}</td><td class="{c}">{e(b)}</td></tr>' for a, c, b in status)}</table>
</section>
<section><h3>On call today</h3>
<p>First line: Marta Keller, until 14:00; then João Ferreira. Second line: Lina Okafor.
Escalations to the infrastructure team go through the on-call phone, not e-mail.</p>
</section>
</aside>
</div>
</body></html>
"""


# ---------------------------------------------------------------------------- the photo

def fetch_photo(scratch: Path) -> Path:
    """chelsea.png out of the scikit-image wheel, checked against PHOTO_SHA256."""
    subprocess.run([sys.executable, "-m", "pip", "download", SKIMAGE, "--no-deps", "--only-binary",
                    ":all:", "-q", "-d", str(scratch)], check=True)
    [wheel] = scratch.glob("scikit_image-*.whl")
    target = scratch / "chelsea.png"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read(PHOTO_IN_WHEEL))
    return target


# ---------------------------------------------------------------------------- the session

class Session:
    """Xvfb, Chromium and two xterms, and a capture of the screen after each step."""

    def __init__(self, scratch: Path, page: Path):
        self.processes: list[subprocess.Popen] = []
        self.x = start_xvfb(f"{WIDTH}x{HEIGHT}x24")
        try:
            self.x.run("xsetroot", "-solid", ROOT_COLOUR)
            self.capture = X11Capture(self.x.display)
            [self.screen] = self.capture.screens()
            self._start_windows(scratch, page)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, *command: str) -> None:
        self.processes.append(subprocess.Popen(list(command), env=self.x.env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _window(self, *search: str) -> str:
        out = self.x.run("xdotool", "search", "--sync", "--onlyvisible", *search, timeout=60)
        return out.split()[-1]

    def _start_windows(self, scratch: Path, page: Path) -> None:
        x, y, w, h = CHROMIUM_GEOMETRY
        self._spawn(shutil.which("chromium") or "/usr/bin/chromium",
                    "--no-sandbox", f"--user-data-dir={scratch / 'chromium-profile'}", "--disable-gpu",
                    "--test-type",  # no "unsupported command-line flag" bar for --no-sandbox
                    "--no-first-run", "--no-default-browser-check", "--disable-sync",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-default-apps", "--disable-extensions", "--password-store=basic",
                    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
                    "--disable-smooth-scrolling", "--force-device-scale-factor=1",
                    "--hide-crash-restore-bubble", "--disable-session-crashed-bubble",
                    f"--window-position={x},{y}", f"--window-size={w},{h}",
                    f"--app={page.as_uri()}")
        self.chromium = self._window("--class", "chromium")
        listing = ("ls -l --time-style=+%Y-%m-%d /usr/share/doc | head -60; echo; "
                   "printf '%s\\n' 'tessera-agent: connected, waiting for a viewer'; exec sleep 1d")
        term = ["-fa", "DejaVu Sans Mono", "-fs", "9", "+sb"]
        self._spawn("xterm", *term, "-geometry", f"88x76+{x + w + 2}+0", "-title", "listing",
                    "-bg", "#fdf6e3", "-fg", "#3c3c3c", "-e", "sh", "-c", listing)
        self._window("--name", "^listing$")
        note = ("printf '%s\\n' 'ws-accounting-03 $ uptime' ' 10:41:07 up 3 days,  2:13,  2 users' "
                "'ws-accounting-03 $ df -h /' 'Filesystem  Size  Used Avail Use% Mounted on' "
                "'/dev/sda2   234G  151G   71G  69% /' 'ws-accounting-03 $ '; exec sleep 1d")
        self._spawn("xterm", *term, "-geometry", "52x8+1440+820", "-title", "mover",
                    "-bg", "#1e1e2e", "-fg", "#e0e0e0", "-e", "sh", "-c", note)
        self.mover = self._window("--name", "^mover$")
        self.mover_at = [1440, 820]
        self.x.run("xdotool", "mousemove", *map(str, POINTER_ON_TEXT))
        self.x.run("xdotool", "windowfocus", "--sync", self.chromium)
        time.sleep(3)  # Chromium's first paint, fonts, the image

    def grab(self) -> bytes:
        return bytes(self.capture.grab(self.screen))

    def settled(self, first_wait: float = 0.12, apart: float = 0.06, quiet: int = 3,
                limit: float = 5.0) -> bytes:
        """The screen once it stayed the same for ``quiet`` grabs ``apart`` seconds apart."""
        time.sleep(first_wait)
        deadline = time.monotonic() + limit
        last, same = self.grab(), 1
        while same < quiet and time.monotonic() < deadline:
            time.sleep(apart)
            now = self.grab()
            same = same + 1 if now == last else 1
            last = now
        return last

    def run(self) -> tuple[list[bytes], list[dict]]:
        frames = [self.settled(first_wait=0.5, quiet=10)]
        steps = [{"kind": "key", "step": "Chromium, the listing xterm and the small xterm"}]

        def step(kind: str, what: str, *commands: list[str]) -> None:
            for command in commands:
                self.x.run("xdotool", *command)
            frames.append(self.settled())
            steps.append({"kind": kind, "step": what})

        for ch in TYPED:
            step("type", f"type {ch!r} into the textarea", ["type", "--delay", "0", ch])
        for i in range(WHEEL_STEPS):
            step("scroll", f"mouse wheel down ({i + 1}/{WHEEL_STEPS})", ["click", "5"])
        # A click on a paragraph takes the focus out of the textarea, so Page Down scrolls the page.
        self.x.run("xdotool", "click", "1")
        for i in range(PAGE_DOWNS):
            step("scroll", f"Page Down ({i + 1}/{PAGE_DOWNS})", ["key", "Next"])
        for i in range(MOVE_STEPS):
            self.mover_at[0] -= 90
            self.mover_at[1] -= 40
            step("move", f"small xterm moved to {self.mover_at[0]},{self.mover_at[1]}",
                 ["windowmove", self.mover, *map(str, self.mover_at)])
        return frames, steps

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        capture = getattr(self, "capture", None)
        if capture is not None:
            capture.close()
        self.x.stop()


# ---------------------------------------------------------------------------- storing it

def encode(frames: list[bytes]) -> list[bytes]:
    """Each frame's FRAME_UPDATE rectangle bytes, as the agent would send them (COPY on)."""
    encoder = ScreenEncoder(WIDTH, HEIGHT, copies=True)
    payloads = [encode_rects(encoder.keyframe(frames[0]))]
    payloads += [encode_rects(encoder.diff(frame)) for frame in frames[1:]]
    return payloads


def compress(payloads: list[bytes]) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        19, window_log=26, enable_ldm=True, write_content_size=True)
    return zstandard.ZstdCompressor(compression_params=params).compress(b"".join(payloads))


def manifest_text(manifest: dict) -> str:
    """The manifest as JSON with one line per frame (a diff of two captures stays readable)."""
    head = json.dumps({k: v for k, v in manifest.items() if k != "frames"}, indent=1)
    frames = ",\n".join("  " + json.dumps(entry) for entry in manifest["frames"])
    return head[:-2] + ',\n "frames": [\n' + frames + "\n ]\n}\n"


def versions() -> dict:
    def first_line(*command: str) -> str:
        done = subprocess.run(list(command), capture_output=True, text=True)
        return (done.stdout or done.stderr).strip().splitlines()[0]

    return {"chromium": first_line("chromium", "--version"), "xterm": first_line("xterm", "-version"),
            "xvfb": "Xvfb " + first_line("dpkg-query", "-W", "-f=${Version}", "xvfb")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, help="chelsea.png (else fetched from the wheel)")
    parser.add_argument("--out", type=Path, default=HERE, help="where the asset goes")
    options = parser.parse_args()
    for tool in ("Xvfb", "chromium", "xterm", "xdotool", "xsetroot"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/install-system-deps")
    with tempfile.TemporaryDirectory(prefix="tessera-capture-") as tmp:
        scratch = Path(tmp)
        photo = options.photo or fetch_photo(scratch / "wheel")
        digest = hashlib.sha256(photo.read_bytes()).hexdigest()
        if digest != PHOTO_SHA256:
            raise SystemExit(f"{photo} is not scikit-image's chelsea.png (sha256 {digest})")
        site = scratch / "site"
        site.mkdir()
        shutil.copy(photo, site / "chelsea.png")
        (site / "index.html").write_text(page_html("chelsea.png", PHOTO_SHOWN), encoding="utf-8")
        session = Session(scratch, site / "index.html")
        try:
            frames, steps = session.run()
        finally:
            session.stop()

    payloads = encode(frames)
    stream = compress(payloads)
    manifest = {
        "what": "a 1920x1080 X11 desktop (Debian Chromium showing a text-heavy page with a photo, "
                "two xterms) captured by agents.host.capture.X11Capture after each step of a "
                "scripted sequence: typing into a textarea, scrolling, a window moved; made by "
                "bench/assets/make_desktop_capture.py, read by bench/tiles.py",
        "width": WIDTH,
        "height": HEIGHT,
        "pixels": "BGRA, 4 bytes a pixel, stride width*4, the fourth byte 255 (as the agent captures)",
        "stream": "desktop_capture.zst",
        "stream_format": "one zstd frame holding, frame after frame, the FRAME_UPDATE rectangle bytes "
                         "(docs/protocol.md; RGBA) agents.host.frames.ScreenEncoder produced with COPY "
                         "detection; frame 0 is a key frame painted onto a zeroed framebuffer, every "
                         "later one onto the frame before; 'bytes' is each frame's length in it",
        "stream_sha256": hashlib.sha256(stream).hexdigest(),
        "photo": {"file": PHOTO_IN_WHEEL, "from": SKIMAGE, "sha256": PHOTO_SHA256,
                  "licence": "CC0 (photographer: Stefan van der Walt)"},
        "made_with": {**versions(), "date": datetime.date.today().isoformat()},
        "frames": [{**s, "bytes": len(p), "sha256": hashlib.sha256(f).hexdigest()}
                   for s, p, f in zip(steps, payloads, frames)],
    }
    decoded = decode_capture(manifest, stream)
    mismatched = [i for i, (a, b) in enumerate(zip(decoded, frames)) if a != b]
    if len(decoded) != len(frames) or mismatched:
        raise SystemExit(f"the stream does not decode to the capture (frames {mismatched})")
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "desktop_capture.zst").write_bytes(stream)
    (options.out / CAPTURE_MANIFEST).write_text(manifest_text(manifest), encoding="utf-8")
    from bench.tiles import load_desktop_capture

    again, width, height = load_desktop_capture(options.out)
    assert (width, height) == (WIDTH, HEIGHT) and again == frames
    print(json.dumps({"frames": len(frames), "stream_bytes": len(stream),
                      "raw_update_bytes": sum(map(len, payloads)),
                      "kinds": {k: sum(s["kind"] == k for s in steps) for k in ("type", "scroll", "move")}}))


if __name__ == "__main__":
    main()
