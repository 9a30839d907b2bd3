#!/usr/bin/env python3
"""Bench-only SIP-over-TLS UAS: answers every OPTIONS with 200 OK on the connection it
came on, and RFC 5626 CRLF keep-alives ("\\r\\n\\r\\n") with a CRLF. Bound to
0.0.0.0:PORT, it stands for any number of TLS gateways on 127.0.0.0/8. Not a test peer.

    python3 bench/responder_tls.py PORT CERT KEY COUNT_FILE

COUNT_FILE gets, twice a second, three numbers: OPTIONS answered, TLS handshakes
completed, connections open. bench/vs_dispatcher.sh turns them into probes and
handshakes per second for each prober.
"""
import asyncio
import os
import resource
import ssl
import sys

COPY = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")
stats = {"answered": 0, "handshakes": 0, "open": 0}


def answer(head: bytes) -> bytes | None:
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"OPTIONS "):
        return None
    out = [b"SIP/2.0 200 OK"]
    for line in lines[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name in COPY:
            if name in (b"to", b"t") and b"tag=" not in line:
                line += b";tag=bench"
            out.append(line)
    out += [b"Server: trunkprobe-bench-responder", b"Content-Length: 0", b"", b""]
    return b"\r\n".join(out)


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            try:
                return int(value.strip())
            except ValueError:
                return 0
    return 0


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # The handshake is done when the callback runs (start_server with ssl=).
    stats["handshakes"] += 1
    stats["open"] += 1
    buf = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buf += chunk
            out = []
            while True:
                # Keep-alive pings and stray CRLFs between messages.
                if buf.startswith(b"\r\n\r\n"):
                    buf = buf[4:]
                    out.append(b"\r\n")
                    continue
                if buf.startswith(b"\r\n"):
                    buf = buf[2:]
                    continue
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end]
                total = end + 4 + content_length(head)
                if len(buf) < total:
                    break
                buf = buf[total:]
                reply = answer(head)
                if reply is not None:
                    stats["answered"] += 1
                    out.append(reply)
            if out:
                writer.write(b"".join(out))
                await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        stats["open"] -= 1
        writer.close()


async def report(path: str) -> None:
    while True:
        with open(path + ".tmp", "w") as f:
            f.write(f"{stats['answered']} {stats['handshakes']} {stats['open']}\n")
        os.replace(path + ".tmp", path)
        await asyncio.sleep(0.5)


async def main() -> None:
    port, cert, key, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(
        serve, "0.0.0.0", port, ssl=ctx, backlog=4096, ssl_handshake_timeout=30
    )
    asyncio.get_running_loop().create_task(report(count))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
