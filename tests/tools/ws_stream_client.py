#!/usr/bin/env python3
"""An independent WebSocket client of berthd's streaming server, on Debian's python3-websockets.

Speaks kubelet's channel framing (binary, or base64 text for the base64.* protocols) for exec/attach and
port-forward, so tests check the server against a client that shares no code with it.

Prints one JSON object on stdout:
  rejected handshake: {"http_status": N, "body": "..."}
  exec/attach:        {"protocol": P, "stdout_bytes": N, "stdout_sha256": H, "stderr": S, "error": E,
                       "initial": [channels of empty first messages], "close_code": C}
  port-forward:       {"protocol": P, "ports": [..], "data_bytes": N, "data_sha256": H, "errors": [..]}
Stdout/stderr/data bytes are also written to --out-dir/{stdout,stderr,data} when given.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import ssl
import sys

import websockets


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--protocol", action="append", default=[], help="offered subprotocol (repeatable)")
    p.add_argument("--mode", choices=["command", "portforward"], default="command")
    p.add_argument("--stdin-file", help="bytes to send on stdin (command) or to the port (portforward)")
    p.add_argument("--stdin-text", help="text to send on stdin")
    p.add_argument("--close-stdin", action="store_true", help="v5: send the close signal for stdin after the input")
    p.add_argument("--resize", action="append", default=[], help="WxH resize events, sent before stdin")
    p.add_argument("--delay-stdin", type=float, default=0.0, help="seconds to wait before sending stdin")
    p.add_argument("--vanish-after", type=int, default=-1,
                   help="abort the TCP connection after this many stdout bytes (0: right after the first message)")
    p.add_argument("--out-dir")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--cafile", help="wss://: the CA (or self-signed certificate) to verify the server with")
    return p.parse_args()


class Framing:
    def __init__(self, protocol):
        self.base64 = protocol is not None and "base64" in protocol

    def encode(self, channel, data):
        if self.base64:
            return chr(ord("0") + channel) + base64.b64encode(data).decode()
        return bytes([channel]) + data

    def decode(self, msg):
        if isinstance(msg, str):
            if not msg:
                return None, b""
            return ord(msg[0]) - ord("0"), base64.b64decode(msg[1:])
        if not msg:
            return None, b""
        return msg[0], msg[1:]


async def send_stdin(args, ws, framing):
    """Sends --stdin-file or --stdin-text on channel 0, in messages of 64 KiB."""
    data = b""
    if args.stdin_file:
        with open(args.stdin_file, "rb") as f:
            data = f.read()
    elif args.stdin_text is not None:
        data = args.stdin_text.encode()
    for i in range(0, len(data), 65536):
        await ws.send(framing.encode(0, data[i:i + 65536]))


async def run_command(args, ws):
    framing = Framing(ws.subprotocol)
    out = {"protocol": ws.subprotocol, "stdout_bytes": 0, "stderr": "", "error": "", "initial": []}
    stdout_hash = hashlib.sha256()
    stdout_file = open(os.path.join(args.out_dir, "stdout"), "wb") if args.out_dir else None
    stderr_file = open(os.path.join(args.out_dir, "stderr"), "wb") if args.out_dir else None
    error = b""

    async def send_input():
        for r in args.resize:
            w, h = r.split("x")
            await ws.send(framing.encode(4, json.dumps({"Width": int(w), "Height": int(h)}).encode()))
        if args.delay_stdin:
            await asyncio.sleep(args.delay_stdin)
        await send_stdin(args, ws, framing)
        if args.close_stdin:
            await ws.send(bytes([255, 0]))

    sender = asyncio.ensure_future(send_input())
    try:
        async for msg in ws:
            ch, data = framing.decode(msg)
            if ch is None:
                continue
            if not data:
                out["initial"].append(ch)
                if args.vanish_after == 0:
                    await asyncio.sleep(0.2)  # let the server start the process first
                    ws.transport.abort()
                    out["vanished"] = True
                    break
                continue
            if ch == 1:
                out["stdout_bytes"] += len(data)
                stdout_hash.update(data)
                if stdout_file:
                    stdout_file.write(data)
                if args.vanish_after >= 0 and out["stdout_bytes"] >= args.vanish_after:
                    ws.transport.abort()
                    out["vanished"] = True
                    break
            elif ch == 2:
                out["stderr"] += data.decode(errors="replace")
                if stderr_file:
                    stderr_file.write(data)
            elif ch == 3:
                error += data
    except websockets.exceptions.ConnectionClosedError as e:
        out["closed_error"] = str(e)
    sender.cancel()
    out["error"] = error.decode(errors="replace")
    out["stdout_sha256"] = stdout_hash.hexdigest()
    out["close_code"] = ws.close_code
    return out


async def run_portforward(args, ws):
    framing = Framing(ws.subprotocol)
    out = {"protocol": ws.subprotocol, "ports": [], "data_bytes": 0, "errors": []}
    data_hash = hashlib.sha256()
    data_file = open(os.path.join(args.out_dir, "data"), "wb") if args.out_dir else None
    seen_port = set()

    sender = asyncio.ensure_future(send_stdin(args, ws, framing))
    try:
        async for msg in ws:
            ch, data = framing.decode(msg)
            if ch is None:
                continue
            if ch not in seen_port:  # each channel's first message is its port, 2 bytes little endian
                seen_port.add(ch)
                if ch % 2 == 0:
                    out["ports"].append(int.from_bytes(data[:2], "little"))
                data = data[2:]
                if not data:
                    continue
            if ch % 2 == 0:
                out["data_bytes"] += len(data)
                data_hash.update(data)
                if data_file:
                    data_file.write(data)
            else:
                out["errors"].append(data.decode(errors="replace"))
    except websockets.exceptions.ConnectionClosedError as e:
        out["closed_error"] = str(e)
    sender.cancel()
    out["data_sha256"] = data_hash.hexdigest()
    out["close_code"] = ws.close_code
    return out


async def main():
    args = parse_args()
    try:
        tls = None
        if args.url.startswith("wss://"):
            tls = ssl.create_default_context(cafile=args.cafile)
            tls.check_hostname = False  # the test certificate names no host; the chain is still verified
        ws = await websockets.connect(args.url, subprotocols=args.protocol or None, max_size=None,
                                      compression=None, ping_interval=None, open_timeout=30, ssl=tls)
    except websockets.exceptions.InvalidStatusCode as e:
        body = ""
        # websockets 10 keeps no body; the status and headers are what a client sees.
        print(json.dumps({"http_status": e.status_code, "headers": dict(e.headers), "body": body}))
        return
    except websockets.exceptions.InvalidHandshake as e:
        print(json.dumps({"handshake_error": str(e)}))
        return
    try:
        if args.mode == "command":
            out = await asyncio.wait_for(run_command(args, ws), args.timeout)
        else:
            out = await asyncio.wait_for(run_portforward(args, ws), args.timeout)
    finally:
        await ws.close()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
