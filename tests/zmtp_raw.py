"""A ZMTP 3.0 DEALER and a msgpack codec written by hand on plain sockets: proves the spec is enough without pyzmq."""

from __future__ import annotations

import socket
import struct
import time

# --- msgpack, following docs/protocol.md §2 ---


def pack(v) -> bytes:
    """Encode with the pinned rules: smallest unsigned/signed ints, float64, smallest str/bin/array/map class."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if v >= 0:
            if v <= 0x7F:
                return bytes([v])
            for tag, fmt, top in ((0xCC, ">B", 0xFF), (0xCD, ">H", 0xFFFF), (0xCE, ">I", 0xFFFFFFFF),
                                  (0xCF, ">Q", 0xFFFFFFFFFFFFFFFF)):
                if v <= top:
                    return bytes([tag]) + struct.pack(fmt, v)
            raise OverflowError(v)
        if v >= -32:
            return struct.pack(">b", v)
        for tag, fmt, low in ((0xD0, ">b", -(2**7)), (0xD1, ">h", -(2**15)), (0xD2, ">i", -(2**31)),
                              (0xD3, ">q", -(2**63))):
            if v >= low:
                return bytes([tag]) + struct.pack(fmt, v)
        raise OverflowError(v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n <= 31:
            return bytes([0xA0 | n]) + b
        if n <= 0xFF:
            return b"\xd9" + struct.pack(">B", n) + b
        if n <= 0xFFFF:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        n = len(b)
        if n <= 0xFF:
            return b"\xc4" + struct.pack(">B", n) + b
        if n <= 0xFFFF:
            return b"\xc5" + struct.pack(">H", n) + b
        return b"\xc6" + struct.pack(">I", n) + b
    if isinstance(v, (list, tuple)):
        n = len(v)
        head = bytes([0x90 | n]) if n <= 15 else (b"\xdc" + struct.pack(">H", n) if n <= 0xFFFF
                                                   else b"\xdd" + struct.pack(">I", n))
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n <= 15 else (b"\xde" + struct.pack(">H", n) if n <= 0xFFFF
                                                   else b"\xdf" + struct.pack(">I", n))
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(f"cannot encode {type(v).__name__}")


def unpack(data: bytes):
    """Decode one msgpack value (no ext types); raises ValueError on bad or trailing bytes."""
    v, i = _unpack(data, 0)
    if i != len(data):
        raise ValueError("trailing bytes")
    return v


def _take(data: bytes, i: int, n: int) -> bytes:
    if i + n > len(data):
        raise ValueError("truncated")
    return data[i:i + n]


def _unpack(data: bytes, i: int):
    b = _take(data, i, 1)[0]
    i += 1
    if b <= 0x7F:
        return b, i
    if b >= 0xE0:
        return b - 0x100, i
    if 0x80 <= b <= 0x8F:
        return _map(data, i, b & 0x0F)
    if 0x90 <= b <= 0x9F:
        return _array(data, i, b & 0x0F)
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return _take(data, i, n).decode("utf-8"), i + n
    if b == 0xC0:
        return None, i
    if b == 0xC2:
        return False, i
    if b == 0xC3:
        return True, i
    sized = {0xC4: (">B", 1, "bin"), 0xC5: (">H", 2, "bin"), 0xC6: (">I", 4, "bin"),
             0xD9: (">B", 1, "str"), 0xDA: (">H", 2, "str"), 0xDB: (">I", 4, "str"),
             0xDC: (">H", 2, "arr"), 0xDD: (">I", 4, "arr"), 0xDE: (">H", 2, "map"), 0xDF: (">I", 4, "map")}
    if b in sized:
        fmt, w, kind = sized[b]
        (n,) = struct.unpack(fmt, _take(data, i, w))
        i += w
        if kind == "bin":
            return _take(data, i, n), i + n
        if kind == "str":
            return _take(data, i, n).decode("utf-8"), i + n
        return (_array if kind == "arr" else _map)(data, i, n)
    scalars = {0xCA: (">f", 4), 0xCB: (">d", 8), 0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
               0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8)}
    if b in scalars:
        fmt, w = scalars[b]
        return struct.unpack(fmt, _take(data, i, w))[0], i + w
    raise ValueError(f"unsupported type byte {b:#04x}")


def _array(data: bytes, i: int, n: int):
    out = []
    for _ in range(n):
        v, i = _unpack(data, i)
        out.append(v)
    return out, i


def _map(data: bytes, i: int, n: int):
    out = {}
    for _ in range(n):
        k, i = _unpack(data, i)
        v, i = _unpack(data, i)
        out[k] = v
    return out, i


# --- ZMTP 3.0 framing ---

GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
MORE, LONG, COMMAND = 1, 2, 4


def encode_frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    """Flags byte, 1-byte size (or 8-byte big-endian size for bodies over 255 bytes), body."""
    flags = (MORE if more else 0) | (COMMAND if command else 0)
    if len(body) > 255:
        return bytes([flags | LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def encode_command(name: bytes, data: bytes = b"") -> bytes:
    return encode_frame(bytes([len(name)]) + name + data, command=True)


def encode_properties(props: dict[str, bytes]) -> bytes:
    out = b""
    for k, v in props.items():
        kb = k.encode("ascii")
        out += bytes([len(kb)]) + kb + struct.pack(">I", len(v)) + v
    return out


def decode_properties(data: bytes) -> dict[str, bytes]:
    props, i = {}, 0
    while i < len(data):
        n = data[i]
        name = data[i + 1:i + 1 + n].decode("ascii")
        i += 1 + n
        (m,) = struct.unpack(">I", data[i:i + 4])
        props[name] = data[i + 4:i + 4 + m]
        i += 4 + m
    return props


def decode_frames(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Parse whole frames from a buffer: ([(flags, body)], bytes consumed)."""
    frames, i = [], 0
    while i < len(data):
        flags = data[i]
        if flags & LONG:
            if i + 9 > len(data):
                break
            (n,) = struct.unpack(">Q", data[i + 1:i + 9])
            start = i + 9
        else:
            if i + 2 > len(data):
                break
            n, start = data[i + 1], i + 2
        if start + n > len(data):
            break
        frames.append((flags, data[start:start + n]))
        i = start + n
    return frames, i


def check_greeting(g: bytes) -> None:
    """Accept any ZMTP >= 3.0 NULL greeting (libzmq sends 3.1 with padding ending in 01)."""
    if len(g) != 64 or g[0] != 0xFF or not g[9] & 1 or g[10] < 3 or g[12:32].rstrip(b"\x00") != b"NULL":
        raise ConnectionError(f"not a ZMTP 3 NULL greeting: {g.hex()}")


class RawDealer:
    """A DEALER peer: greeting, NULL handshake, multipart messages, PING -> PONG; nothing else."""

    def __init__(self, host: str, port: int, properties: dict[str, bytes] | None = None, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.pings_answered = 0
        self.sock.sendall(GREETING)
        check_greeting(self._read_exact(64))
        props = {"Socket-Type": b"DEALER", **(properties or {})}
        self.sock.sendall(encode_command(b"READY", encode_properties(props)))
        flags, body = self._read_frame()
        if not flags & COMMAND or body[1:1 + body[0]] != b"READY":
            raise ConnectionError("expected READY")
        self.peer_properties = decode_properties(body[1 + body[0]:])

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("peer closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_frame(self) -> tuple[int, bytes]:
        flags = self._read_exact(1)[0]
        n = struct.unpack(">Q", self._read_exact(8))[0] if flags & LONG else self._read_exact(1)[0]
        return flags, self._read_exact(n)

    def send_multipart(self, parts: list[bytes]) -> None:
        self.sock.sendall(b"".join(encode_frame(p, more=i < len(parts) - 1) for i, p in enumerate(parts)))

    def send(self, msg: dict, *extra: bytes) -> None:
        self.send_multipart([pack(msg), *extra])

    def recv_multipart(self, timeout: float = 5.0) -> list[bytes]:
        """Next message; answers PING commands on the way."""
        self.sock.settimeout(timeout)
        parts: list[bytes] = []
        while True:
            flags, body = self._read_frame()
            if flags & COMMAND:
                name = body[1:1 + body[0]]
                if name == b"PING":
                    self.sock.sendall(encode_command(b"PONG", body[1 + body[0] + 2:]))
                    self.pings_answered += 1
                continue
            parts.append(body)
            if not flags & MORE:
                return parts

    def recv(self, timeout: float = 5.0) -> tuple[dict, list[bytes]]:
        parts = self.recv_multipart(timeout)
        return unpack(parts[0]), parts[1:]

    def recv_type(self, type_: str, timeout: float = 5.0) -> tuple[dict, list[bytes]]:
        """Skip messages until one of `type_` arrives (frames interleave with replies)."""
        deadline = time.monotonic() + timeout
        while True:
            msg, extra = self.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("type") == type_:
                return msg, extra

    def close(self) -> None:
        self.sock.close()
