#!/usr/bin/env python3
"""An independent Binance WebSocket API client against `tape venue-sim`'s strict mode.

It signs requests by Binance's documented rule itself (no tape code): every parameter but
`signature`, sorted by name, `name=value` joined with `&`, no percent-encoding; HMAC-SHA256 in
hex (stdlib `hmac`) or Ed25519 in base64 (PyPI `cryptography`). Checks, each must hold:

- the rule reproduces Binance's documented HMAC example signature;
- `session.logon` with an Ed25519 key, then `order.place` with only a timestamp: accepted;
- an HMAC-signed and an Ed25519-signed `order.place` on a fresh connection: accepted;
- a wrong signature: -1022; a stale timestamp: -1021; an unknown key: -2015 (status 401).

Usage:
  sign_client.py keygen DIR        write DIR/ed.pem, DIR/ed.pub and DIR/hmac.secret
  sign_client.py run --url WSS_URL --ca CA_PEM --keys DIR --ed-key NAME --hmac-key NAME

Exits non-zero on the first mismatch, saying what was expected and what came.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import websockets

WAIT_S = 15


def payload(params):
    """Binance's signature payload: sorted by name, no percent-encoding, signature left out."""
    parts = []
    for name in sorted(params):
        if name == "signature":
            continue
        value = params[name]
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        parts.append(f"{name}={text}")
    return "&".join(parts)


def sign_hmac(secret: bytes, params):
    return hmac.new(secret, payload(params).encode("utf-8"), hashlib.sha256).hexdigest()


def sign_ed25519(key: Ed25519PrivateKey, params):
    return base64.b64encode(key.sign(payload(params).encode("utf-8"))).decode("ascii")


def check_documented_example():
    # binance/binance-spot-api-docs web-socket-api.md, "SIGNED request example (HMAC)".
    params = {
        "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "0.01000000", "price": "52000.00", "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    }
    secret = b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    got = sign_hmac(secret, params)
    want = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    expect(got == want, "Binance's documented HMAC example", want, got)


def keygen(directory):
    os.makedirs(directory, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private(os.path.join(directory, "ed.pem"), pem)
    with open(os.path.join(directory, "ed.pub"), "wb") as f:
        f.write(pub)
    write_private(os.path.join(directory, "hmac.secret"), secrets.token_hex(32).encode("ascii"))


def write_private(path, data: bytes):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


CHECKS = []


def expect(ok, what, want, got):
    if not ok:
        print(f"MISMATCH: {what}: expected {want}, got {got}", file=sys.stderr)
        sys.exit(1)
    CHECKS.append(what)
    print(f"ok: {what}")


class Api:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def call(self, method, params=None):
        self.next_id += 1
        rid = f"py-{self.next_id}"
        req = {"id": rid, "method": method}
        if params is not None:
            req["params"] = params
        await self.ws.send(json.dumps(req, ensure_ascii=False))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT_S))
            if "subscriptionId" in msg and "id" not in msg:
                continue  # a user-data event
            if msg.get("id") != rid:
                raise SystemExit(f"MISMATCH: response id {msg.get('id')!r} for request {rid!r}: {msg}")
            return msg


def now_ms():
    return int(time.time() * 1000)


def order(client_id):
    return {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "0.00100000", "price": "1.00", "newClientOrderId": client_id,
    }


def expect_ok(resp, what):
    expect(resp.get("status") == 200, what, "status 200", resp)


def expect_error(resp, what, status, code):
    err = resp.get("error") or {}
    expect(
        resp.get("status") == status and err.get("code") == code,
        what, f"status {status} code {code}", resp,
    )


async def run(args):
    with open(os.path.join(args.keys, "ed.pem"), "rb") as f:
        ed = serialization.load_pem_private_key(f.read(), password=None)
    with open(os.path.join(args.keys, "hmac.secret"), "rb") as f:
        secret = f.read().strip()
    ctx = ssl.create_default_context(cafile=args.ca) if args.url.startswith("wss:") else None
    kwargs = {"ssl": ctx} if ctx else {}

    async with websockets.connect(args.url, open_timeout=WAIT_S, **kwargs) as ws:
        api = Api(ws)
        logon = {"apiKey": args.ed_key, "timestamp": now_ms()}
        logon["signature"] = sign_ed25519(ed, logon)
        r = await api.call("session.logon", logon)
        expect_ok(r, "session.logon with an Ed25519 key")
        expect(r["result"].get("apiKey") == args.ed_key, "session.logon names the key", args.ed_key, r)
        r = await api.call("order.place", {**order("py-logon-1"), "timestamp": now_ms()})
        expect_ok(r, "order.place on a logged-on session with only a timestamp")
        expect(r["result"].get("status") == "NEW", "the order rests", "NEW", r)

    async with websockets.connect(args.url, open_timeout=WAIT_S, **kwargs) as ws:
        api = Api(ws)
        p = {**order("py-hmac-1"), "apiKey": args.hmac_key, "timestamp": now_ms(), "recvWindow": 5000}
        p["signature"] = sign_hmac(secret, p)
        expect_ok(await api.call("order.place", p), "HMAC-signed order.place")

        p = {**order("py-ed-1"), "apiKey": args.ed_key, "timestamp": now_ms()}
        p["signature"] = sign_ed25519(ed, p)
        expect_ok(await api.call("order.place", p), "Ed25519-signed order.place without a logon")

        p = {**order("py-bad-1"), "apiKey": args.hmac_key, "timestamp": now_ms()}
        p["signature"] = sign_hmac(b"not-the-secret", p)
        expect_error(await api.call("order.place", p), "a wrong signature", 400, -1022)

        p = {**order("py-old-1"), "apiKey": args.hmac_key, "timestamp": now_ms() - 120_000}
        p["signature"] = sign_hmac(secret, p)
        expect_error(await api.call("order.place", p), "a stale timestamp", 400, -1021)

        p = {**order("py-who-1"), "apiKey": "unknownKey", "timestamp": now_ms()}
        p["signature"] = sign_hmac(secret, p)
        expect_error(await api.call("order.place", p), "an unknown API key", 401, -2015)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("dir")
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--ca", required=True)
    r.add_argument("--keys", required=True)
    r.add_argument("--ed-key", required=True)
    r.add_argument("--hmac-key", required=True)
    args = ap.parse_args()
    if args.cmd == "keygen":
        keygen(args.dir)
        return
    check_documented_example()
    asyncio.run(run(args))
    print(f"sign_client: all {len(CHECKS)} checks held")


if __name__ == "__main__":
    main()
