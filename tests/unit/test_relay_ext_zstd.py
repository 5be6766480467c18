"""relay_ext's zstd stream (``FrameCompressor`` / ``FrameDecompressor``): what a viewer receiving
frame updates relies on, and what the relay relies on when a peer sends garbage or a bomb
(docs/protocol.md, "Compression")."""
from __future__ import annotations

import random

import pytest
import zstandard

from relay_ext import FrameCompressor, FrameDecompressor


def noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_each_update_decodes_on_arrival_in_order():
    sender, receiver = FrameCompressor(), FrameDecompressor()
    updates = [noise(3000, 1), b"tile" * 500, noise(10, 2), bytes(70000)]
    for update in updates:
        assert receiver.decompress(sender.compress(update)) == update


def test_content_seen_in_an_earlier_update_costs_almost_nothing_the_second_time():
    sender, receiver = FrameCompressor(), FrameDecompressor()
    window = noise(200_000, 3)  # incompressible on its own
    first = sender.compress(window)
    again = sender.compress(window)
    assert len(first) > 190_000
    assert len(again) < 1_000
    assert receiver.decompress(first) == window
    assert receiver.decompress(again) == window


def test_an_update_out_of_order_does_not_decode():
    sender = FrameCompressor()
    sender.compress(noise(5000, 4))
    second = sender.compress(noise(5000, 4))  # refers back to the first update
    with pytest.raises(ValueError):
        FrameDecompressor().decompress(second)


def test_declared_length_must_match_exactly():
    payload = noise(1000, 5) + bytes(5000)
    chunk = FrameCompressor().compress(payload)
    assert FrameDecompressor().decompress(chunk, raw_len=len(payload)) == payload
    with pytest.raises(ValueError, match="more than 5999 bytes"):
        FrameDecompressor().decompress(chunk, raw_len=len(payload) - 1)
    with pytest.raises(ValueError, match="not the declared 6001"):
        FrameDecompressor().decompress(chunk, raw_len=len(payload) + 1)


def test_a_decompression_bomb_is_stopped_at_the_limit():
    bomb = FrameCompressor(level=19).compress(bytes(50_000_000))
    assert len(bomb) < 5_000
    receiver = FrameDecompressor(max_output=1_000_000)
    with pytest.raises(ValueError, match="more than 1000000 bytes"):
        receiver.decompress(bomb)
    with pytest.raises(ValueError, match="failed earlier"):
        receiver.decompress(FrameCompressor().compress(b"x"))


def test_garbage_is_a_value_error_and_breaks_the_stream():
    receiver = FrameDecompressor()
    with pytest.raises(ValueError, match="corrupt zstd stream"):
        receiver.decompress(b"this is not zstd at all")
    with pytest.raises(ValueError):
        receiver.decompress(b"")


def test_a_window_over_8_mib_is_refused_by_the_receiver():
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
    chunk = stream.compress(b"a" * 1000) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    with pytest.raises(ValueError):
        FrameDecompressor().decompress(chunk)


def test_empty_updates_send_nothing():
    sender, receiver = FrameCompressor(), FrameDecompressor()
    assert sender.compress(b"") == b""
    assert receiver.decompress(b"") == b""
    assert receiver.decompress(sender.compress(b"after")) == b"after"


def test_compressor_settings_are_checked_and_the_window_kept_within_the_protocol():
    assert FrameCompressor().window_log == 21
    assert FrameCompressor(level=22).window_log == 23
    assert FrameCompressor(level=1, window_log=16).window_log == 16
    for bad in ({"level": 23}, {"window_log": 24}, {"window_log": 9}):
        with pytest.raises(ValueError):
            FrameCompressor(**bad)
    with pytest.raises(TypeError):
        FrameCompressor(level="3")
    with pytest.raises(ValueError):
        FrameDecompressor(max_output=0)
    assert FrameCompressor(level=1, window_log=16).memory_size() > 0


def test_the_protocol_modules_reference_decoder_reads_this_stream():
    protocol = pytest.importorskip("agents.common.protocol")
    sender = FrameCompressor()
    receiver = protocol.StreamDecompressor()
    for update in (noise(4000, 6), noise(4000, 6) + b"more", bytes(100_000)):
        assert receiver.decompress(sender.compress(update), len(update)) == update
