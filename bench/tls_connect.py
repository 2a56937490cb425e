#!/usr/bin/env python3
"""New TLS connections for bench/run.sh's handshake variant.

Each connection does a TLS 1.3 handshake (sending SNI), one HTTP/1.1 request (`Connection:
close`) and reads the response to the end. With --resume, each one offers the session (ticket) of
the one before it in the same process, since a TLS 1.3 ticket may be good only once (rustls's
stateful tickets are); without it, every handshake is a full one. Whether the server resumed is
what OpenSSL says (`SSL_session_reused`, the "Reused" of `openssl s_client`), counted per
connection, so a run that did not resume shows it.

    tls_connect.py ADDR PORT SNI SECONDS PROCESSES [--resume] [--header 'Name: value']...

Prints one line: connections, resumed, failed, answers other than 200.
"""

import argparse
import multiprocessing
import socket
import ssl
import time


def connect_for(args, request, out):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    session = None
    done = resumed = failed = not_ok = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection((args.addr, args.port)) as raw:
                with ctx.wrap_socket(raw, server_hostname=args.sni, session=session) as tls:
                    tls.sendall(request)
                    first = tls.recv(65536)
                    while tls.recv(65536):
                        pass
                    done += 1
                    resumed += tls.session_reused
                    not_ok += not first.startswith(b"HTTP/1.1 200 ")
                    if args.resume:
                        session = tls.session
        except (OSError, ssl.SSLError):
            failed += 1
            session = None
    out.put((done, resumed, failed, not_ok))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("sni")
    p.add_argument("seconds", type=float)
    p.add_argument("processes", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--header", action="append", default=[])
    args = p.parse_args()
    head = [f"GET / HTTP/1.1", f"Host: {args.sni}", *args.header, "Connection: close"]
    request = ("\r\n".join(head) + "\r\n\r\n").encode()
    out = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=connect_for, args=(args, request, out))
        for _ in range(args.processes)
    ]
    for proc in procs:
        proc.start()
    totals = [0, 0, 0, 0]
    for _ in procs:
        totals = [a + b for a, b in zip(totals, out.get())]
    for proc in procs:
        proc.join()
    print(*totals)


if __name__ == "__main__":
    main()
