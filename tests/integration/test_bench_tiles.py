"""The real desktop capture of ``bench/assets`` as ``bench/tiles.py`` uses it: it decodes to
exactly the frames that were captured (the manifest's SHA-256 of each), the loader refuses an
asset that does not, and the benchmark's sections run on a few of its frames (their own
lossless checks included). No figures are judged here (docs/benchmarks.md)."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

pytest.importorskip("numpy")

from bench import tiles  # noqa: E402


@pytest.fixture(scope="module")
def capture():
    frames, width, height = tiles.load_desktop_capture()
    return frames, width, height, tiles.read_capture_manifest()


def test_desktop_capture_decodes_to_the_captured_frames_byte_for_byte(capture):
    frames, width, height, manifest = capture
    assert (width, height) == (1920, 1080)
    assert len(frames) == len(manifest["frames"]) >= 60
    kinds = [entry["kind"] for entry in manifest["frames"]]
    assert kinds[0] == "key" and {"type", "scroll", "move"} <= set(kinds[1:])
    assert kinds.count("type") >= 40
    for frame, entry in zip(frames, manifest["frames"]):
        assert len(frame) == width * height * 4
        assert hashlib.sha256(frame).hexdigest() == entry["sha256"]
    assert frames[0][3::4] == b"\xff" * (width * height)  # opaque, as the agent captures
    # every step changed the screen, and the last frame is far from the first
    assert all(a != b for a, b in zip(frames, frames[1:]))
    assert len(tiles.relay_ext.changed_tiles(frames[0], frames[-1], width, height)) > 200
    # the asset stays small enough to keep in the repository
    assert (tiles.ASSETS / manifest["stream"]).stat().st_size < 600_000


def test_loader_refuses_a_capture_that_does_not_decode_to_its_checksums(tmp_path):
    for name in ("desktop_capture.json", "desktop_capture.zst"):
        shutil.copy(tiles.ASSETS / name, tmp_path / name)
    manifest = json.loads((tmp_path / "desktop_capture.json").read_text())
    manifest["frames"][5]["sha256"] = "0" * 64
    (tmp_path / "desktop_capture.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="frame 5 of the desktop capture"):
        tiles.load_desktop_capture(tmp_path)
    stream = bytearray((tmp_path / "desktop_capture.zst").read_bytes())
    stream[len(stream) // 2] ^= 0x01
    (tmp_path / "desktop_capture.zst").write_bytes(bytes(stream))
    with pytest.raises(ValueError, match="not the stream the manifest describes"):
        tiles.load_desktop_capture(tmp_path)


def test_compress_and_tile_diff_sections_run_on_three_frames_of_the_capture(capture):
    frames, _, _, manifest = capture
    kinds = [entry["kind"] for entry in manifest["frames"]]
    scroll = kinds.index("scroll")
    # the key frame, the typed text, the first scroll: a typing-sized and a scroll-sized update
    three = [frames[0], frames[scroll - 1], frames[scroll]]
    out = tiles.compress(three, repeat=1, frames_made="three frames of the desktop capture")
    assert out["updates"]["frames"] == 2 and out["updates"]["changed_tiles"] > 0
    for name in ("tessera", "zlib6", "tessera_agent"):
        assert out[name]["bytes"] > 0 and out[name]["keyframe_bytes"] > 0, name
        assert out[name]["mb_per_s"] > 0, name
    # the agent sends the scroll as a COPY plus the new lines: far fewer bytes than whole tiles
    assert out["tessera_agent"]["bytes"] < out["zlib6"]["bytes"]
    sequence = tiles.sequence_diff(three, repeat=1)
    assert sequence["pairs"] == 2 and sequence["changed_tiles_per_pair"]["unchanged_pairs"] == 0
    assert sequence["gbps"]["relay_ext_cython"] > 0
