"""The wire protocol of docs/protocol.md (agents.common.protocol): every message survives a
round trip, and whatever bytes arrive, decoding either succeeds or raises ProtocolError with a
documented close code — never another exception."""
from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from agents.common import protocol as p

DOCUMENTED_CLOSE_CODES = {int(c) for c in p.CloseCode}

MONITORS = (p.Monitor(0, 0, 0, 1920, 1080, primary=True), p.Monitor(1, 1920, -200, 1280, 1024))


def palette_rect():
    indices = [0, 1, 2, 1, 0, 2]  # 3x2 pixels, 3 colours -> 2 bits per index
    return p.PaletteRect(4, 5, 3, 2, b"\x00\x00\x00\xff\xff\xff\xff\xff\x10\x20\x30\xff",
                         p.pack_indices(indices, 3, 2, 2))


RECTS = (
    p.RawRect(0, 0, 2, 2, bytes(range(16))),
    p.FillRect(10, 20, 64, 64, b"\x11\x22\x33\xff"),
    palette_rect(),
    p.CopyRect(0, 100, 300, 40, 0, 140),
)

EVERY_MESSAGE = [
    p.Hello(agent_version="0.1.0", os="Debian GNU/Linux 12", hostname="pc-1 <b>", user="ann",
            locked=True),
    p.Hello(agent_version="1", os="", hostname="", user=""),
    p.Status(user="bob", locked=False),
    p.ScreenInfo(MONITORS),
    p.FrameUpdate(screen=1, seq=7, rects=RECTS, keyframe=True),
    p.FrameUpdate(screen=0, seq=2**32 - 1, rects=()),
    p.Ack(seq=42),
    p.Cursor(x=-5, y=700, visible=True, shape=p.CursorShape(1, 2, 3, 4, bytes(range(48)))),
    p.Cursor(x=10, y=10, visible=False),
    p.Pointer(screen=1, x=640, y=480, buttons=0b101, wheel_x=-1, wheel_y=3),
    p.Key(keysym=0xFF0D, down=True),
    p.Key(keysym=0x01000000 + ord("é"), down=False),
    p.Clipboard(text="héllo\nworld"),
    p.Power(p.PowerAction.RESTART),
    p.PowerResult(p.PowerAction.SHUTDOWN, p.PowerStatus.REFUSED, "not permitted here"),
    p.Ping(nonce=2**64 - 1),
    p.Pong(nonce=12345),
    p.Session(p.SessionEvent.JOINED, viewer=3, viewers=2, permissions=0b111,
              technician="Tom Tech"),
    p.RequestKeyframe(screen=p.ALL_SCREENS),
    p.SelectScreen(screen=1),
    p.Welcome(viewer=9, device=1234),
    p.Permissions(mask=p.permission_mask(["remote_session", "view_screen"])),
    p.DeviceState(online=True),
    p.ConfirmRequest(request=2**32 - 1, timeout=30, technician="Tina Tech (tina@example.com) <b>"),
    p.ConfirmAnswer(request=7, answer=p.Answer.ALLOW),
    p.ConfirmAnswer(request=8, answer=p.Answer.UNANSWERED),
    p.ConfirmState(p.ConfirmOutcome.WAITING, p.ConfirmVia.NONE, "Waiting for confirmation…"),
    p.ConfirmState(p.ConfirmOutcome.DENIED, p.ConfirmVia.EMAIL, "Denied by Ann."),
    p.ConfirmCancel(request=2**32 - 1),
    p.ConsentRequest(permissions=0b100110, timeout=120, technician="Tina Tech (tina@example.com) <b>"),
    p.Consent(permissions=0b10),
    p.Consent(permissions=0),
    p.Error(code=p.CloseCode.MALFORMED, message="bad bytes"),
]


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg):
    data = msg.encode()
    assert data[0] == msg.TYPE
    assert p.decode(data) == msg


def test_every_message_type_has_a_round_trip_case():
    assert {m.TYPE for m in EVERY_MESSAGE} == set(p.MsgType)


def test_compressed_frame_updates_round_trip_over_one_stream():
    sender, receiver = p.StreamCompressor(), p.StreamDecompressor()
    first = p.FrameUpdate(0, 1, RECTS)
    second = p.FrameUpdate(0, 2, RECTS[:2])
    for msg in (first, second, first):
        data = msg.encode(sender)
        assert data[1] & p.ZSTD
        assert p.decode(data, receiver) == msg


def test_a_repeated_update_compresses_against_the_earlier_one():
    sender = p.StreamCompressor()
    noise = b"".join(hashlib.sha256(bytes((i % 256, i // 256))).digest() for i in range(512))
    update = p.FrameUpdate(0, 1, (p.RawRect(0, 0, 64, 64, noise),))
    first, again = len(update.encode(sender)), len(update.encode(sender))
    assert again < first / 20


def test_large_update_decompresses_whole():
    sender, receiver = p.StreamCompressor(), p.StreamDecompressor()
    pixels = bytes(range(256)) * (256 * 256 * 4 // 256)
    msg = p.FrameUpdate(0, 1, (p.RawRect(0, 0, 256, 256, pixels),))
    assert p.decode(msg.encode(sender), receiver) == msg


def test_decompression_bomb_is_malformed_and_stops_early():
    payload = p.encode_rects([p.RawRect(0, 0, 2048, 2048, bytes(2048 * 2048 * 4))])
    sender = p.StreamCompressor()
    data = p.encode_frame_update(0, 1, payload, compressor=sender)
    # Lie about the length: claim 1 KiB where 16 MiB follow.
    forged = data[:7] + struct.pack("<I", 1024) + data[11:]
    with pytest.raises(p.ProtocolError) as err:
        p.decode(forged, p.StreamDecompressor())
    assert err.value.close_code == p.CloseCode.MALFORMED


def test_compressed_update_without_a_stream_is_malformed():
    data = p.FrameUpdate(0, 1, RECTS).encode(p.StreamCompressor())
    with pytest.raises(p.ProtocolError) as err:
        p.decode(data)
    assert err.value.close_code == p.CloseCode.MALFORMED


def test_corrupt_compressed_update_is_malformed():
    data = bytearray(p.FrameUpdate(0, 1, RECTS).encode(p.StreamCompressor()))
    data[12:20] = b"\xff" * 8
    with pytest.raises(p.ProtocolError) as err:
        p.decode(bytes(data), p.StreamDecompressor())
    assert err.value.close_code == p.CloseCode.MALFORMED


@pytest.mark.parametrize("data, code", [
    (b"", p.CloseCode.MALFORMED),
    (b"\x00", p.CloseCode.UNKNOWN_TYPE),
    (b"\x55hello", p.CloseCode.UNKNOWN_TYPE),
    (b"\x05\x01\x00", p.CloseCode.MALFORMED),  # ack cut short
    (p.Ack(1).encode() + b"x", p.CloseCode.MALFORMED),  # trailing byte
    (b"\x08\x02\x61\x00\x00\x00", p.CloseCode.MALFORMED),  # key neither up nor down
    (b"\x0a\x09", p.CloseCode.MALFORMED),  # unknown power action
    (b"\x02\x80\x00", p.CloseCode.MALFORMED),  # undefined status flag
    (b"\x02\x00\x02\xff\xfe", p.CloseCode.MALFORMED),  # user name not UTF-8
    (b"\x03\x00", p.CloseCode.MALFORMED),  # no monitors
    (b"\x04\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x01\x00\x09",
     p.CloseCode.MALFORMED),  # unknown rectangle encoding
    (b"\x04\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",
     p.CloseCode.MALFORMED),  # empty rectangle
    (b"\x14\x01\x00\x00\x00\x00\x00\x00", p.CloseCode.MALFORMED),  # confirm request, no timeout
    (b"\x14\x01\x00\x00\x00\x1e\x00\x02\xff\xfe", p.CloseCode.MALFORMED),  # name not UTF-8
    (b"\x15\x01\x00\x00\x00\x03", p.CloseCode.MALFORMED),  # unknown answer
    (b"\x15\x01\x00\x00\x00", p.CloseCode.MALFORMED),  # answer cut short
    (p.ConfirmAnswer(1, p.Answer.DENY).encode() + b"\x00", p.CloseCode.MALFORMED),  # trailing byte
    (p.ConfirmCancel(1).encode()[:-1], p.CloseCode.MALFORMED),  # the request cut short
    (p.ConfirmCancel(1).encode() + b"\x00", p.CloseCode.MALFORMED),  # trailing byte
    (b"\x16\x00\x00\x00\x00", p.CloseCode.MALFORMED),  # unknown confirmation state
    (b"\x16\x02\x03\x00\x00", p.CloseCode.MALFORMED),  # unknown channel
    (b"\x16\x02\x01\x05\x00ab", p.CloseCode.MALFORMED),  # text shorter than its length
    ("text", p.CloseCode.UNSUPPORTED_DATA),
])
def test_malformed_bytes_raise_protocol_error_with_the_documented_code(data, code):
    with pytest.raises(p.ProtocolError) as err:
        p.decode(data)
    assert err.value.close_code == code


def test_palette_index_beyond_the_palette_is_malformed():
    rect = p.PaletteRect(0, 0, 2, 1, b"\x00\x00\x00\xff" * 3, p.pack_indices([3, 0], 2, 1, 2))
    data = p.FrameUpdate(0, 1, (rect,)).encode()
    with pytest.raises(p.ProtocolError) as err:
        p.decode(data)
    assert err.value.close_code == p.CloseCode.MALFORMED


def test_two_primary_monitors_are_malformed():
    data = bytes((p.MsgType.SCREEN_INFO, 2)) + struct.pack("<BBiiHH", 0, 1, 0, 0, 10, 10) \
        + struct.pack("<BBiiHH", 1, 1, 10, 0, 10, 10)
    with pytest.raises(p.ProtocolError):
        p.decode(data)


def test_unsupported_version_still_decodes_so_the_relay_can_answer_4002():
    data = bytearray(p.Hello("1", "linux", "pc").encode())
    data[1:3] = struct.pack("<H", 99)
    assert p.decode(bytes(data)).version == 99


def test_rectangles_outside_the_screen_are_refused():
    with pytest.raises(p.ProtocolError) as err:
        p.check_bounds([p.FillRect(1900, 0, 64, 64, b"\0\0\0\xff")], 1920, 1080)
    assert err.value.close_code == p.CloseCode.MALFORMED
    with pytest.raises(p.ProtocolError):
        p.check_bounds([p.CopyRect(0, 0, 10, 10, 1915, 0)], 1920, 1080)
    p.check_bounds(RECTS, 1920, 1080)


def test_apply_rects_paints_each_encoding():
    width, height = 8, 4
    fb = bytearray(width * height * 4)
    red, blue = b"\xff\x00\x00\xff", b"\x00\x00\xff\xff"
    p.apply_rects(fb, width, height, [
        p.FillRect(0, 0, 8, 4, red),
        p.PaletteRect(0, 0, 2, 1, red + blue, p.pack_indices([1, 0], 2, 1, 1)),
        p.RawRect(7, 3, 1, 1, b"\x01\x02\x03\xff"),
        p.CopyRect(4, 0, 2, 1, 0, 0),  # copies "blue, red" to x=4
    ])

    def px(x, y):
        return bytes(fb[(y * width + x) * 4:(y * width + x) * 4 + 4])

    assert px(0, 0) == blue and px(1, 0) == red
    assert px(4, 0) == blue and px(5, 0) == red
    assert px(7, 3) == b"\x01\x02\x03\xff"
    assert px(3, 2) == red


def test_overlapping_copy_behaves_like_a_scroll():
    width, height = 1, 4
    fb = bytearray(b"".join(bytes((i, 0, 0, 255)) for i in range(4)))
    p.apply_rects(fb, width, height, [p.CopyRect(0, 0, 1, 3, 0, 1)])  # scroll up one line
    assert [fb[i * 4] for i in range(4)] == [1, 2, 3, 3]


@pytest.mark.parametrize("colours", [1, 2, 3, 4, 5, 16, 17, 256])
def test_palette_packing_round_trips_for_every_width(colours):
    bits = p.palette_bits(colours)
    for width in (1, 3, 7, 8, 9, 64):
        indices = [(i * 5) % colours for i in range(width * 3)]
        packed = p.pack_indices(indices, width, 3, bits)
        assert len(packed) == p.packed_size(width * 3, bits)
        assert p.unpack_indices(packed, width, 3, bits) == indices


def test_confirm_answer_comes_only_from_the_agent():
    assert p.MsgType.CONFIRM_ANSWER in p.FROM_AGENT
    assert p.MsgType.CONFIRM_ANSWER not in p.FROM_VIEWER
    assert p.CloseCode.ACCESS_DENIED == 4012


def test_permission_bits_follow_the_device_permissions_order():
    from app.models.roles import DEVICE_PERMISSIONS

    assert p.PERMISSION_BITS == DEVICE_PERMISSIONS
    mask = p.permission_mask({"keyboard_mouse", "tunnel"})
    assert mask == (1 << 2) | (1 << 10)
    assert p.permission_keys(mask) == {"keyboard_mouse", "tunnel"}


def test_directions_cover_every_message_a_peer_may_send():
    relay_only = {p.MsgType.SESSION, p.MsgType.REQUEST_KEYFRAME, p.MsgType.WELCOME,
                  p.MsgType.PERMISSIONS, p.MsgType.DEVICE_STATE, p.MsgType.CONFIRM_REQUEST,
                  p.MsgType.CONFIRM_STATE, p.MsgType.CONFIRM_CANCEL, p.MsgType.CONSENT_REQUEST}
    assert p.FROM_AGENT | p.FROM_VIEWER | relay_only == set(p.MsgType)
    assert not (p.FROM_AGENT | p.FROM_VIEWER) & relay_only


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_protocol_error(data):
    try:
        p.decode(data, p.StreamDecompressor())
    except p.ProtocolError as err:
        assert err.close_code in DOCUMENTED_CLOSE_CODES


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EVERY_MESSAGE), st.data())
def test_mutated_messages_never_raise_anything_but_protocol_error(msg, data):
    raw = bytearray(msg.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "grow"]))
        if kind == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[data.draw(st.integers(0, len(raw))):]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=8))
    try:
        p.decode(bytes(raw), p.StreamDecompressor())
    except p.ProtocolError as err:
        assert err.close_code in DOCUMENTED_CLOSE_CODES


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 7), st.integers(1, 16),
                          st.integers(1, 8), st.binary(min_size=4, max_size=4)), max_size=6))
def test_any_valid_update_round_trips_and_applies_like_its_pixels(specs):
    rects = [p.FillRect(x, y, w, h, colour) for x, y, w, h, colour in specs
             if x + w <= 16 and y + h <= 8]
    msg = p.FrameUpdate(0, 1, tuple(rects))
    assert p.decode(msg.encode(p.StreamCompressor()), p.StreamDecompressor()) == msg
    fb = bytearray(16 * 8 * 4)
    p.apply_rects(fb, 16, 8, rects)
    expected = bytearray(16 * 8 * 4)
    for r in rects:
        for j in range(r.height):
            for i in range(r.width):
                k = ((r.y + j) * 16 + r.x + i) * 4
                expected[k:k + 4] = r.color
    assert fb == expected
