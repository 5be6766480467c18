"""The relay's websocket framing (app/relay/wsio.py) over a real socket pair: messages are
unmasked correctly and fast-path patched into gevent-websocket, size limits apply before a
payload is read, and framing errors close with the documented codes."""
from __future__ import annotations

import os
import socket
import struct

import pytest
from hypothesis import given, strategies as st

from agents.common.protocol import CloseCode
from app.relay import wsio


def naive_unmask(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_unmask_matches_the_rfc_definition(payload, mask):
    assert wsio.unmask(payload, mask) == naive_unmask(payload, mask)
    assert wsio._unmask_py(payload, mask) == naive_unmask(payload, mask)


def test_gevent_websocket_header_uses_the_fast_unmask():
    from geventwebsocket.websocket import Header

    wsio.install_fast_unmask()
    header = Header()
    header.mask = b"\x01\x02\x03\x04"
    payload = os.urandom(1000)
    assert header.unmask_payload(payload) == naive_unmask(payload, header.mask)
    assert getattr(Header.unmask_payload, "_tessera", False)


class FakeWebSocket:
    """What Channel uses of gevent-websocket's WebSocket: stream.read and handler.socket."""

    class _Stream:
        def __init__(self, sock):
            self.read = sock.makefile("rb").read

    class _Handler:
        def __init__(self, sock):
            self.socket = sock

    def __init__(self, sock):
        self.stream = self._Stream(sock)
        self.handler = self._Handler(sock)
        self.closed = False


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    channel = wsio.Channel(FakeWebSocket(server), max_message=1000)
    client.settimeout(5)
    server.settimeout(5)
    yield channel, client
    server.close()
    client.close()


def client_frame(payload: bytes, opcode=0x2, fin=True, masked=True, length=None) -> bytes:
    length = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, (0x80 if masked else 0) | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, (0x80 if masked else 0) | 126, length)
    else:
        head = struct.pack("!BBQ", first, (0x80 if masked else 0) | 127, length)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + naive_unmask(payload, mask)


def read_server_frame(sock) -> tuple[int, bytes]:
    b0, b1 = sock.recv(2, socket.MSG_WAITALL)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", sock.recv(2, socket.MSG_WAITALL))[0]
    elif length == 127:
        length = struct.unpack("!Q", sock.recv(8, socket.MSG_WAITALL))[0]
    return b0 & 0x0F, sock.recv(length, socket.MSG_WAITALL) if length else b""


def test_a_masked_binary_message_is_received_whole(pair):
    channel, client = pair
    client.sendall(client_frame(b"hello relay"))
    assert channel.recv() == b"hello relay"


def test_a_fragmented_message_is_joined_and_pings_between_are_answered(pair):
    channel, client = pair
    client.sendall(client_frame(b"abc", fin=False) + client_frame(b"ping!", opcode=0x9)
                   + client_frame(b"def", opcode=0x0))
    assert channel.recv() == b"abcdef"
    assert read_server_frame(client) == (0xA, b"ping!")


def test_a_message_over_the_limit_is_refused_from_its_header(pair):
    channel, client = pair
    # Announce 2**40 bytes and send none: the limit is applied before any payload is read.
    client.sendall(client_frame(b"", length=2 ** 40)[:10])
    with pytest.raises(wsio.Closed) as closed:
        channel.recv()
    assert closed.value.code == CloseCode.TOO_BIG
    opcode, payload = read_server_frame(client)
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == CloseCode.TOO_BIG


def test_fragments_adding_up_over_the_limit_are_refused(pair):
    channel, client = pair
    client.sendall(client_frame(bytes(600), fin=False) + client_frame(bytes(600), opcode=0x0))
    with pytest.raises(wsio.Closed) as closed:
        channel.recv()
    assert closed.value.code == CloseCode.TOO_BIG


@pytest.mark.parametrize("frame, code", [
    (client_frame(b"plain", masked=False), CloseCode.PROTOCOL_ERROR),
    (client_frame(b"text", opcode=0x1), CloseCode.UNSUPPORTED_DATA),
    (client_frame(b"x", opcode=0x3), CloseCode.PROTOCOL_ERROR),
    (client_frame(b"more", opcode=0x0), CloseCode.PROTOCOL_ERROR),
    (bytes((0xC2, 0x80)) + os.urandom(4), CloseCode.PROTOCOL_ERROR),  # a reserved bit
], ids=["unmasked", "text", "unknown-opcode", "stray-continuation", "reserved-bit"])
def test_framing_errors_close_with_the_documented_code(pair, frame, code):
    channel, client = pair
    client.sendall(frame)
    with pytest.raises(wsio.Closed) as closed:
        channel.recv()
    assert closed.value.code == code


def test_a_close_from_the_peer_is_echoed_and_reported(pair):
    channel, client = pair
    client.sendall(client_frame(struct.pack("!H", 1000) + b"bye", opcode=0x8))
    with pytest.raises(wsio.Closed) as closed:
        channel.recv()
    assert (closed.value.code, closed.value.reason) == (1000, "bye")
    assert read_server_frame(client)[0] == 0x8


def test_close_sends_the_last_message_then_the_close_frame(pair):
    channel, client = pair
    channel.close(4006, "malformed message", b"\x7f\x01\x02")
    assert read_server_frame(client) == (0x2, b"\x7f\x01\x02")
    opcode, payload = read_server_frame(client)
    assert opcode == 0x8 and payload == struct.pack("!H", 4006) + b"malformed message"
    with pytest.raises(wsio.Closed):
        channel.send(b"after")


def test_large_messages_are_sent_with_a_64_bit_length(pair):
    channel, client = pair
    payload = os.urandom(70_000)
    channel.send(payload)
    assert read_server_frame(client) == (0x2, payload)


def test_linger_ends_at_the_peers_close_frame_after_dropping_what_came_before(pair):
    # The peer keeps its end open after answering our close, as browsers do: linger must end
    # at the close frame, not wait for the connection to end (60 s here: a hang would show).
    channel, client = pair
    channel.close(CloseCode.POLICY, "bye")
    client.sendall(client_frame(b"x" * 70000) + client_frame(b"late") + client_frame(b"\x03\xe8", opcode=0x8))
    channel.linger(seconds=60)
    client.sendall(b"still open")  # the peer's socket was never closed by it


def test_linger_skips_the_rest_of_a_refused_oversized_frame_then_waits_for_the_close(pair):
    channel, client = pair
    channel.max_message = 100
    frame = client_frame(os.urandom(5000))
    client.sendall(frame[:4])  # the header: refused before any payload is read
    with pytest.raises(wsio.Closed):
        channel.recv()
    # The rest of the refused frame comes anyway, then the peer's close.
    client.sendall(frame[4:] + client_frame(b"\x03\xe8", opcode=0x8))
    channel.linger(seconds=60)
    assert read_server_frame(client)[0] == 0x8
