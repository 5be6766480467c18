"""Type stubs for ``relay_ext``: whichever implementation is loaded has these signatures."""
from types import ModuleType

from relay_ext._tiles import MAX_DIMENSION as MAX_DIMENSION
from relay_ext._tiles import MAX_PALETTE as MAX_PALETTE
from relay_ext._tiles import apply_tile as apply_tile
from relay_ext._tiles import bgra_to_rgba as bgra_to_rgba
from relay_ext._tiles import changed_tiles as changed_tiles
from relay_ext._tiles import copy_rect as copy_rect
from relay_ext._tiles import dirty_rect as dirty_rect
from relay_ext._tiles import downscale as downscale
from relay_ext._tiles import expand_palette as expand_palette
from relay_ext._tiles import extract_tile as extract_tile
from relay_ext._tiles import find_copy as find_copy
from relay_ext._tiles import palette as palette
from relay_ext._tiles import palette_bits as palette_bits
from relay_ext._tiles import reduce_colours as reduce_colours
from relay_ext._tiles import solid_colour as solid_colour
from relay_ext._tiles import unmask as unmask
from relay_ext._zstd import FrameCompressor as FrameCompressor
from relay_ext._zstd import FrameDecompressor as FrameDecompressor

IMPLEMENTATION: str

def implementations() -> dict[str, ModuleType]: ...
