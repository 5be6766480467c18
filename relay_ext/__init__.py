"""Tessera's hot path: tile diffing, pixel kernels, websocket unmasking and streaming zstd.

Everything that touches every pixel of every frame, or every byte of every websocket message,
lives here so it can be compiled: ``relay_ext/_tiles.pyx`` (Cython, built by ``pip install -e .``)
with the pure-Python twin ``relay_ext/pure.py`` (same API, same results). This module exports
whichever is in use; ``IMPLEMENTATION`` says which (``"cython"`` or ``"python"``). Setting
``TESSERA_PURE_PYTHON=1`` forces the twin; without a compiled module the twin is used anyway.

Callers: the Host agent (diff and encode captures, find scrolled and moved areas), the relay
(framebuffers, unmasking, per-viewer compression) and viewers (decode). Formats:
``docs/protocol.md``.
"""
from __future__ import annotations

import os
from types import ModuleType

from relay_ext import pure as _pure

_compiled: ModuleType | None
try:
    from relay_ext import _tiles as _compiled
except ImportError:  # no compiler where Tessera was installed: the twin serves
    _compiled = None

_forced_pure = os.environ.get("TESSERA_PURE_PYTHON", "").strip().lower() in {"1", "true", "yes"}
_impl: ModuleType = _pure if (_forced_pure or _compiled is None) else _compiled

IMPLEMENTATION: str = _impl.IMPLEMENTATION
MAX_DIMENSION: int = _impl.MAX_DIMENSION
MAX_PALETTE: int = _impl.MAX_PALETTE

FrameCompressor = _impl.FrameCompressor
FrameDecompressor = _impl.FrameDecompressor
apply_tile = _impl.apply_tile
bgra_to_rgba = _impl.bgra_to_rgba
changed_tiles = _impl.changed_tiles
copy_rect = _impl.copy_rect
dirty_rect = _impl.dirty_rect
downscale = _impl.downscale
expand_palette = _impl.expand_palette
extract_tile = _impl.extract_tile
find_copy = _impl.find_copy
palette = _impl.palette
palette_bits = _impl.palette_bits
reduce_colours = _impl.reduce_colours
solid_colour = _impl.solid_colour
unmask = _impl.unmask


def implementations() -> dict[str, ModuleType]:
    """Every implementation importable here, by name (tests and benchmarks run each)."""
    found = {"python": _pure}
    if _compiled is not None:
        found["cython"] = _compiled
    return found


__all__ = [
    "IMPLEMENTATION", "MAX_DIMENSION", "MAX_PALETTE", "FrameCompressor", "FrameDecompressor",
    "apply_tile", "bgra_to_rgba", "changed_tiles", "copy_rect", "dirty_rect", "downscale",
    "expand_palette", "extract_tile", "find_copy", "implementations", "palette", "palette_bits",
    "reduce_colours", "solid_colour", "unmask",
]
