"""Streaming zstd for frame updates: one compression context per viewer, one per direction.

Both implementations of ``relay_ext`` (the Cython module and the pure-Python twin) re-export
these two classes, so ``relay_ext.FrameCompressor`` is the same whichever is loaded: the heavy
lifting is already in C inside the ``zstandard`` package. Called by the relay (one
``FrameCompressor`` per viewer stream, one ``FrameDecompressor`` per agent stream it reads) and by
the agent and test viewers.

The stream is a single zstd frame that never ends: each ``compress()`` flushes a block
(``ZSTD_e_flush``) so the receiver can decode that update on arrival, while later updates can
still refer back to earlier ones (a window scrolled back, a dialog re-opened). That is why a
context belongs to one receiver, in order: the bytes only decode after everything before them.
``docs/protocol.md`` ("Compression") caps the window at 8 MiB and has the receiver check each
update's declared length; both classes keep to that.
"""
from __future__ import annotations

import zstandard

#: Level 3 is zstd's default; levels 1-3 are several times faster than zlib level 6 and still
#: smaller on screen content.
DEFAULT_LEVEL = 3
#: The largest single update a decompressor accepts by default (the protocol's raw_len limit):
#: a peer's message cannot make us allocate more than this, however well it compresses.
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
#: zstd's ZSTD_minCLevel() (the zstandard package exports only the maximum).
MIN_LEVEL = -(1 << 17)
#: The protocol's window limit (8 MiB): what a receiver must be ready to hold per stream.
MAX_WINDOW_LOG = 23


class FrameCompressor:
    """Compresses a sequence of updates for one receiver; ``compress`` returns one decodable chunk.

    ``level`` is the zstd level (negative levels are faster still); ``window_log`` (10-23) bounds
    how far back the stream may refer, and so the memory both ends need (default: the level's
    own, 2 MiB at level 3, never more than the protocol's 8 MiB).
    """

    def __init__(self, level: int = DEFAULT_LEVEL, window_log: int | None = None) -> None:
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError("level must be an int")
        if not MIN_LEVEL <= level <= zstandard.MAX_COMPRESSION_LEVEL:
            raise ValueError(
                f"level must be between {MIN_LEVEL} and "
                f"{zstandard.MAX_COMPRESSION_LEVEL}, not {level}"
            )
        if window_log is None:
            window_log = min(
                zstandard.ZstdCompressionParameters.from_level(level).window_log, MAX_WINDOW_LOG
            )
        elif isinstance(window_log, bool) or not isinstance(window_log, int):
            raise TypeError("window_log must be an int")
        elif not 10 <= window_log <= MAX_WINDOW_LOG:
            raise ValueError(
                f"window_log must be between 10 and {MAX_WINDOW_LOG}, not {window_log}"
            )
        params = zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log)
        compressor = zstandard.ZstdCompressor(compression_params=params)
        self.window_log = window_log
        self.level = level
        self._compressor = compressor
        self._stream = compressor.compressobj()

    def compress(self, chunk) -> bytes:
        """Compress one update and flush it: the result decodes on its own, given the previous ones.

        An empty update gives ``b""`` and leaves the stream untouched (nothing to send).
        """
        data = memoryview(chunk)
        if data.nbytes == 0:
            return b""
        return self._stream.compress(data) + self._stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def memory_size(self) -> int:
        """Bytes of C memory the context holds (what one more viewer costs the relay)."""
        return self._compressor.memory_size()


#: zstd's worst case: a 4-byte RLE block regenerates a whole 128 KiB block.
_MAX_RATIO = 32768
_MIN_FEED = 256
_MAX_FEED = 65536


class FrameDecompressor:
    """Decodes the chunks of one ``FrameCompressor``, in order.

    ``max_output`` bounds what one ``decompress`` call may produce; past it, or on corrupt input,
    or a window over 8 MiB, ``ValueError`` is raised and the stream is unusable (the caller
    closes the connection).
    """

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        if isinstance(max_output, bool) or not isinstance(max_output, int):
            raise TypeError("max_output must be an int")
        if max_output < 1:
            raise ValueError("max_output must be positive")
        self._max_output = max_output
        decompressor = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG)
        self._stream = decompressor.decompressobj()
        self._broken = False

    def decompress(self, data, raw_len: int | None = None) -> bytes:
        """The update that ``FrameCompressor.compress`` turned into ``data``.

        With ``raw_len`` (the length the sender declared), anything but exactly that many bytes
        is a ``ValueError``, and decoding stops as soon as it would produce more.
        """
        if self._broken:
            raise ValueError("the stream failed earlier; start a new one")
        limit = self._max_output
        if raw_len is not None:
            if isinstance(raw_len, bool) or not isinstance(raw_len, int):
                raise TypeError("raw_len must be an int")
            if not 0 <= raw_len <= self._max_output:
                raise ValueError(f"raw_len must be between 0 and {self._max_output}, not {raw_len}")
            limit = raw_len
        view = memoryview(data).cast("B")
        size = view.nbytes
        if size == 0:
            if raw_len:
                raise ValueError(f"an empty update cannot hold {raw_len} bytes")
            return b""
        parts = []
        produced = 0
        pos = 0
        try:
            while pos < size:
                # Feed no more input than could, at zstd's worst ratio, fill what is left of the
                # budget: a bomb is caught having produced at most the limit plus one small
                # slice's worth (8 MiB), never the whole message's worth. Honest updates
                # compress far less than that, so this costs a few calls per update.
                step = min(max((limit - produced) // _MAX_RATIO, _MIN_FEED), _MAX_FEED)
                out = self._stream.decompress(view[pos:pos + step])
                pos += step
                if out:
                    produced += len(out)
                    if produced > limit:
                        raise ValueError(f"update decompresses to more than {limit} bytes")
                    parts.append(out)
        except zstandard.ZstdError as exc:
            self._broken = True
            raise ValueError(f"corrupt zstd stream: {exc}") from None
        except ValueError:
            self._broken = True
            raise
        if raw_len is not None and produced != raw_len:
            self._broken = True
            raise ValueError(f"update decompresses to {produced} bytes, not the declared {raw_len}")
        return b"".join(parts)
