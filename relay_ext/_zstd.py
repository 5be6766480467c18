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
"""
from __future__ import annotations

import zstandard

#: Level 3 is zstd's default; levels 1-3 are several times faster than zlib level 6 and still
#: smaller on screen content.
DEFAULT_LEVEL = 3
#: The largest single update a decompressor accepts by default (two 4K frames of BGRA pixels):
#: a peer's message cannot make us allocate more than this, however well it compresses.
DEFAULT_MAX_OUTPUT = 2 * 3840 * 2160 * 4
#: zstd's ZSTD_minCLevel() (the zstandard package exports only the maximum).
MIN_LEVEL = -(1 << 17)


class FrameCompressor:
    """Compresses a sequence of updates for one receiver; ``compress`` returns one decodable chunk.

    ``level`` is the zstd level (negative levels are faster still); ``window_log`` (10-31) bounds
    how far back the stream may refer, and so the memory the receiver needs (default: the
    level's own, 2 MiB at level 3).
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
            compressor = zstandard.ZstdCompressor(level=level)
        else:
            if isinstance(window_log, bool) or not isinstance(window_log, int):
                raise TypeError("window_log must be an int")
            if not 10 <= window_log <= 31:
                raise ValueError(f"window_log must be between 10 and 31, not {window_log}")
            params = zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log)
            compressor = zstandard.ZstdCompressor(compression_params=params)
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


class _Sink:
    """Collects the decompressor's output and stops it once an update grows past the limit."""

    __slots__ = ("parts", "size", "limit")

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit

    def write(self, data) -> int:
        self.size += len(data)
        if self.size > self.limit:
            # Raised inside zstandard's write loop: decompression stops here, before the rest of
            # a hostile message is inflated.
            raise _TooLarge
        self.parts.append(bytes(data))
        return len(data)


class _TooLarge(Exception):
    pass


class FrameDecompressor:
    """Decodes the chunks of one ``FrameCompressor``, in order.

    ``max_output`` bounds what one ``decompress`` call may produce; past it, or on corrupt input,
    ``ValueError`` is raised and the stream is unusable (the caller closes the connection).
    """

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        if isinstance(max_output, bool) or not isinstance(max_output, int):
            raise TypeError("max_output must be an int")
        if max_output < 1:
            raise ValueError("max_output must be positive")
        self._sink = _Sink(max_output)
        # stream_writer rather than decompressobj: it hands us the output in pieces, so the
        # size limit is enforced while decoding, not after a bomb has already been inflated.
        self._writer = zstandard.ZstdDecompressor().stream_writer(
            self._sink, write_size=65536, write_return_read=True
        )
        self._broken = False

    def decompress(self, data) -> bytes:
        """The update that ``FrameCompressor.compress`` turned into ``data``."""
        if self._broken:
            raise ValueError("the stream failed earlier; start a new one")
        view = memoryview(data)
        if view.nbytes == 0:
            return b""
        sink = self._sink
        sink.parts.clear()
        sink.size = 0
        try:
            self._writer.write(view)
        except _TooLarge:
            self._broken = True
            sink.parts.clear()
            raise ValueError(f"update decompresses to more than {sink.limit} bytes") from None
        except zstandard.ZstdError as exc:
            self._broken = True
            sink.parts.clear()
            raise ValueError(f"corrupt zstd stream: {exc}") from None
        out = b"".join(sink.parts)
        sink.parts.clear()
        return out
