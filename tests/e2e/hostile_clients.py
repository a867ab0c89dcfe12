#!/usr/bin/env python3
"""Misbehaving clients for hostile_clients_test.sh, with nothing but the standard library.

A target is unix:PATH (the agent's Workload API, plaintext HTTP/2), tcp:HOST:PORT (raw bytes to
the server's port) or tls:HOST:PORT (the server's port, after a TLS handshake without a client
certificate, ALPN h2: what an agent that has not attested yet does). Commands:

  garbage TARGET           random bytes of several sizes, raw and after the HTTP/2 preface
  churn TARGET COUNT       COUNT connections opened and dropped, in several ways
  oversized TARGET PATH [MIB]
                           one gRPC call on PATH whose request message claims MIB MiB (default
                           64), sent honouring HTTP/2 flow control; prints how the call ended

Each prints one summary line. Exit status 0 unless this script itself fails; judging what the
daemon did is the caller's job (the daemon must keep serving, and `oversized` must be refused).
"""
import os
import select
import selectors
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def connect(target, timeout=5.0):
    kind, _, rest = target.partition(":")
    if kind == "unix":
        # A full listen queue answers EAGAIN at once (no waiting, unlike TCP): retry a while.
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(rest)
                return s
            except BlockingIOError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    host, _, port = rest.rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    if kind == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s)
    elif kind != "tcp":
        sys.exit(f"unknown target kind {kind!r}")
    return s


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream) + payload


def send_quietly(s, data):
    """Sends what the peer takes; a peer that hangs up or stalls is fine here."""
    try:
        s.sendall(data)
        return True
    except (OSError, socket.timeout):
        return False


def garbage(target):
    sizes = [1, 23, 24, 100, 1000, 16 * 1024, 64 * 1024, 1024 * 1024]
    conns = []
    for rep in range(3):
        for size in sizes:
            for after_preface in (False, True):
                s = connect(target)
                data = (PREFACE if after_preface else b"") + os.urandom(size)
                send_quietly(s, data)
                conns.append(s)
    # How many the daemon hung up on within two seconds (a few bytes short of a preface may
    # rightly be waited on until the handshake timeout).
    sel = selectors.DefaultSelector()
    for s in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + 2
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0, deadline - time.monotonic())):
            try:
                more = key.fileobj.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                more = b""
            if not more:
                closed += 1
                sel.unregister(key.fileobj)
    for s in conns:
        s.close()
    print(f"garbage {target}: {len(conns)} connections, {closed} closed by the daemon")


def churn(target, count):
    ways = 0
    for i in range(count):
        way = i % 5
        try:
            s = connect(target)
        except OSError as e:
            sys.exit(f"churn {target}: connection {i} failed: {e}")
        if way == 1:
            send_quietly(s, PREFACE[:10])
        elif way == 2:
            send_quietly(s, PREFACE + frame(SETTINGS, 0, 0))
        elif way == 3:
            # An abortive close: RST instead of FIN.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        ways += 1
    # Then many at once, held open together and dropped together.
    held = [connect(target) for _ in range(min(count, 200))]
    for s in held:
        send_quietly(s, PREFACE + frame(SETTINGS, 0, 0))
    for s in held:
        s.close()
    print(f"churn {target}: {ways} connections one by one, {len(held)} at once")


def hpack_literal(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def printable(data):
    """What can be read of an HPACK block without decoding it (literal strings show through)."""
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


def oversized(target, path, claimed_mib):
    claimed = claimed_mib * 1024 * 1024
    s = connect(target, timeout=10)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    headers = b"".join(
        hpack_literal(n, v) for n, v in [
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", b"localhost"), (b"content-type", b"application/grpc"),
            (b"te", b"trailers"), (b"workload.spiffe.io", b"true")])
    s.sendall(frame(HEADERS, END_HEADERS, 1, headers))
    body = b"\x00" + struct.pack(">I", claimed)
    total = len(body) + claimed
    conn_window = stream_window = 65535
    max_frame = 16384
    sent = 0
    buf = b""
    outcome = None
    endings = []  # every frame that ends the call or the connection, in order
    start = time.monotonic()
    chunk = os.urandom(max_frame)

    def read_frames():
        nonlocal buf, conn_window, stream_window, max_frame, outcome
        try:
            more = s.recv(65536)
        except socket.timeout:
            outcome = "stalled: no window and no answer for 10 s"
            return
        except OSError as e:
            outcome = f"connection reset ({e.__class__.__name__})"
            return
        if not more:
            outcome = "connection closed by the daemon"
            return
        buf += more
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, flags = buf[3], buf[4]
            stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload = buf[9:9 + length]
            buf = buf[9 + length:]
            if kind == SETTINGS and not flags & ACK:
                for i in range(0, len(payload) - 5, 6):
                    ident, value = struct.unpack(">HI", payload[i:i + 6])
                    if ident == 4:
                        stream_window += value - 65535
                    elif ident == 5:
                        max_frame = value
                s.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                s.sendall(frame(PING, ACK, 0, payload))
            elif kind == WINDOW_UPDATE:
                increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                if stream == 0:
                    conn_window += increment
                elif stream == 1:
                    stream_window += increment
            elif kind == RST_STREAM and stream == 1:
                endings.append(f"RST_STREAM error {int.from_bytes(payload[:4], 'big')}")
            elif kind == GOAWAY:
                code = int.from_bytes(payload[4:8], "big")
                endings.append(f"GOAWAY error {code} {payload[8:]!r}")
            elif kind == HEADERS and stream == 1 and flags & END_STREAM:
                # The status is HPACK-encoded; literal strings (grpc-message) show through.
                endings.append("trailers " + repr(printable(payload)))
        if endings:
            outcome = "; ".join(endings)

    while outcome is None and sent < total:
        window = min(conn_window, stream_window)
        if window <= 0:
            read_frames()
            continue
        if body:
            piece, body = body, b""
        else:
            piece = chunk[:min(max_frame, window, total - sent)]
        last = sent + len(piece) == total
        if not send_quietly(s, frame(DATA, END_STREAM if last else 0, 1, piece)):
            outcome = "the daemon stopped reading"
            break
        sent += len(piece)
        conn_window -= len(piece)
        stream_window -= len(piece)
        # Keep up with what the daemon says meanwhile.
        if select.select([s], [], [], 0)[0] or (isinstance(s, ssl.SSLSocket) and s.pending()):
            read_frames()
    read_all = outcome is None
    while outcome is None:
        read_frames()
    if read_all:
        outcome = "the daemon read the whole request, then: " + outcome
    s.close()
    print(f"oversized {target}: sent {sent} of {total} bytes in "
          f"{time.monotonic() - start:.1f} s; {outcome}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    command, target = sys.argv[1], sys.argv[2]
    if command == "garbage":
        garbage(target)
    elif command == "churn":
        churn(target, int(sys.argv[3]))
    elif command == "oversized":
        oversized(target, sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 64)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
