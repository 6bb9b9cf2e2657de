#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into corpus/<target>/seed-*.

Run from anywhere: python3 tools/fuzz/seeds.py. Seeds come from the repository's fixtures
(fixtures/hftbacktest, fixtures/cryptofeed, fixtures/userdata, fixtures/session), examples/*.toml
and literals from the unit tests (JWTs of engine/core/src/auth/tests.rs, request heads of
engine/node). The fuzzer's own finds sit beside them; `cargo fuzz cmin` keeps the set small.
"""
import collections
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "fixtures")


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def event_of(v):
    d = v.get("data", v) if isinstance(v, dict) else v
    if not isinstance(d, dict):
        return "array"
    if "lastUpdateId" in d:
        return "snapshot"
    return d.get("e", "bookTicker" if "b" in d and "a" in d and "u" in d else "other")


def trimmed_snapshot(body, levels):
    v = json.loads(body, object_pairs_hook=collections.OrderedDict)
    for k in ("bids", "asks"):
        if k in v:
            v[k] = v[k][:levels]
    return json.dumps(v, separators=(",", ":"))


def market_frames():
    """(name, market prefix, frame) for a few frames of every event type of every capture."""
    frames = []
    hft = os.path.join(FIX, "hftbacktest")
    for f in sorted(os.listdir(hft)):
        seen = collections.Counter()
        for line in open(os.path.join(hft, f)):
            _, js = line.rstrip("\n").split(" ", 1)
            ev = event_of(json.loads(js))
            if ev == "snapshot":
                frames.append((f"{f.split('_')[0]}-{f.split('_')[1]}-snapshot", trimmed_snapshot(js, 4)))
                continue
            if seen[ev] < 3 and len(js) < 3000:
                seen[ev] += 1
                frames.append((f"{f.split('_')[0]}-{f.split('_')[1]}-{ev}-{seen[ev]}", js))
    cf = os.path.join(FIX, "cryptofeed")
    for f in ("BINANCE.ws.1.0", "BINANCE_FUTURES.ws.1.0"):
        seen = collections.Counter()
        for line in list(open(os.path.join(cf, f)))[1:]:
            line = line.rstrip("\n")
            if not line:
                continue
            _, js = line.split(": ", 1)
            try:
                ev = event_of(json.loads(js))
            except ValueError:
                continue
            if seen[ev] < 3 and len(js) < 3000:
                seen[ev] += 1
                frames.append((f"cf-{f.split('.')[0].lower()}-{ev}-{seen[ev]}", js))
    return frames


def snapshots():
    snaps = []
    hft = os.path.join(FIX, "hftbacktest")
    for f in sorted(os.listdir(hft)):
        for line in open(os.path.join(hft, f)):
            _, js = line.rstrip("\n").split(" ", 1)
            if js.startswith('{"lastUpdateId"'):
                snaps.append((f.split("_20")[0], js))
    cf = os.path.join(FIX, "cryptofeed")
    for f in ("BINANCE.http.0.0", "BINANCE_FUTURES.http.0.0"):
        for i, line in enumerate(open(os.path.join(cf, f))):
            if " -> " not in line or i >= 2:
                continue
            js = line.split(" -> ", 1)[1].split(": ", 1)[1].strip()
            snaps.append((f"cf-{f.split('.')[0].lower()}-{i}", js))
    return snaps


def session_records():
    b = open(os.path.join(FIX, "session", "00000000000000000000.seg"), "rb").read()
    pos, recs = 64, []
    while pos + 32 <= len(b):
        m, kind, ln, seq, recv, src, _crc = struct.unpack_from("<HHIQQII", b, pos)
        if m == 0:
            break
        recs.append((seq, recv, src, kind, b[pos + 32 : pos + 32 + ln]))
        pos = (pos + 32 + ln + 7) & ~7
    return recs


def segment(first_seq, size, records):
    h = bytearray(64)
    h[0:8] = b"TAPEJSEG"
    struct.pack_into("<HHIQQ", h, 8, 1, 64, 8, first_seq, size)
    struct.pack_into("<I", h, 60, zlib.crc32(bytes(h[:60])))
    body = bytearray(h)
    for seq, recv, src, kind, payload in records:
        hdr = struct.pack("<HHIQQI", 0x5254, kind, len(payload), seq, recv, src)
        crc = zlib.crc32(payload, zlib.crc32(hdr))
        rec = hdr + struct.pack("<I", crc) + payload
        rec += b"\0" * (-len(rec) % 8)
        body += rec
    return bytes(body)


def main():
    for name, js in market_frames():
        out("decode_market", name, js)
    out("decode_market", "control-ack", '{"result":null,"id":1}')

    for name, js in snapshots():
        out("decode_snapshot", name, trimmed_snapshot(js, 5))

    ud = os.path.join(FIX, "userdata")
    for f in sorted(os.listdir(ud)):
        bare = open(os.path.join(ud, f)).read().strip()
        n = f.rsplit(".", 1)[0]
        out("decode_userdata", n, bare)
        out("decode_userdata", n + "-stream", '{"stream":"8f0c2b7d1a","data":%s}' % bare)
        out("decode_userdata", n + "-subscription", '{"subscriptionId":3,"event":%s}' % bare)

    # Journal: flags byte, then segments (all but the last behind a u16 length).
    recs = [r for r in session_records()[:40] if len(r[4]) < 400][:6]
    one = segment(0, 1024, recs[:3])
    out("journal_reader", "one-segment", b"\x00" + one)
    out("journal_reader", "one-segment-repair", b"\x0c" + one)
    out("journal_reader", "one-segment-torn", b"\x00" + one[: len(one) - 5])
    a, b = segment(0, 512, recs[:3]), segment(3, 512, recs[3:6])
    out("journal_reader", "two-segments", b"\x01" + struct.pack("<H", len(a)) + a + b)
    out("journal_reader", "empty", b"")

    ex = os.path.join(ROOT, "examples")
    for f in sorted(os.listdir(ex)):
        if f.endswith(".toml"):
            out("config", f, open(os.path.join(ex, f)).read())
    out("config", "empty", "")

    # JWT: mode byte 0 = raw token, 1 = signed claims, 2 = signed header \n claims.
    out("jwt", "python-token", b"\x00" + b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3MDAwMDAwMDAsInN1YiI6ImFsaWNlIn0.3xAu5Osl21CD7hKTU0CNyy3nxvH3_O8NNzhUCQ085TU")
    out("jwt", "rfc7519-token", b"\x00" + b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    out("jwt", "claims-alice", b"\x01" + b'{"sub":"alice","exp":1700000060}')
    out("jwt", "claims-nbf-iat", b"\x01" + b'{"sub":"root","exp":1700000060,"nbf":1699999990,"iat":1699999990}')
    out("jwt", "claims-expired", b"\x01" + b'{"sub":"bot-1@desk.eu","exp":1600000000}')
    out("jwt", "header-claims", b"\x02" + b'{"alg":"HS256","typ":"JWT"}\n{"sub":"alice","exp":1700000060}')
    out("jwt", "header-none", b"\x02" + b'{"alg":"none"}\n{"sub":"alice","exp":1700000060}')
    out("jwt", "header-crit", b"\x02" + b'{"alg":"HS256","crit":["x"]}\n{"sub":"alice","exp":1700000060}')

    heads = {
        "upgrade": b"GET /ws?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "status": b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "status-auth": b"GET /status?verbose=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n",
        "head": b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n",
        "garbage-after": b"GET /status HTTP/1.1\r\n\r\n\x00\x01garbage\r\n\r\n",
        "no-key": b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "http10": b"GET / HTTP/1.0\r\n\r\n",
        "partial": b"GET /ws HTTP/1.1\r\nHost: x\r\n",
    }
    for n, h in heads.items():
        out("http_head", n, h)

    # Hub: frames split at '\n'; each frame's first byte c is the op (c % 8: 0-3 text,
    # 4 open with the query, 5 close, 6 advance the clock and run timers, 7 feed records)
    # and the connection ((c // 8) % 4); the rest is its argument.
    msgs = [
        '{"type":"subscribe","id":1,"channels":["book","bbo"],"symbols":["btcusdt"],"depth":10}',
        '{"type":"subscribe","id":9,"channels":["ticker","bbo","trades"],"symbols":["spot:ETHUSDT"]}',
        '{"type":"subscribe","id":2,"channels":["status"]}',
        '{"type":"get_book","id":3,"symbol":"spot:BTCUSDT","depth":3}',
        '{"type":"unsubscribe","id":4,"channels":["book","trades"],"symbols":["BTCUSDT"]}',
        '{"type":"ping","id":"a\\"b\\\\c\\u0001\\n</script>\u00e9"}',
        '{"type":"publish","id":1,"channel":"signal","data":{"side":"buy","strength":"0.7"}}',
        '{"type":"subscribe","id":"s","channels":["orders","positions","portfolio","risk_alerts"]}',
        '{"type":"place_order","id":3,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.01"}',
        "{",
    ]
    for i, m in enumerate(msgs):
        out("hub", f"msg-{i}", "0" + m + "\n7\n7\n0" + '{"type":"ping"}')
    out("hub", "sub-feed-tick", "\n".join([
        "0" + msgs[0], "8" + msgs[1], "7abcdefgh", "7", "6\x05", "(" + msgs[2], "5", "70123", "H" + msgs[3],
    ]))
    out("hub", "reopen", "4\n5\n4verbose=1\n0" + msgs[0] + "\n7\n6\xff\n6\xff")

    # Gateway: the first byte picks the market (even USD-M, odd spot); then frames split at
    # '\n', first byte c: c % 6 = 0-1 a venue frame, 2 a gateway_event payload, 3 a gateway
    # event by the next byte (0 up, 1 ready, 2 down, 3 timeout of rest[1], 4 shutdown),
    # 4 a limit order of user (c // 6) % 2 (price offset, id), 5 cancel_all.
    def otu(c, x, st, l, z):
        return ('{"e":"ORDER_TRADE_UPDATE","T":1,"E":1,"o":{"s":"BTCUSDT","c":"%s","S":"BUY",'
                '"o":"LIMIT","f":"GTC","q":"0.010","p":"60001.00","ap":"0","sp":"0","x":"%s",'
                '"X":"%s","i":7,"l":"%s","z":"%s","L":"60001.00","n":"0","N":"USDT","T":1,"t":1,'
                '"b":"0","a":"0","m":true,"R":false,"ps":"BOTH","rp":"0"}}' % (c, x, st, l, z))
    order_obj = ('{"symbol":"BTCUSDT","orderId":7,"clientOrderId":"tg1","price":"60001.00",'
                 '"origQty":"0.010","executedQty":"0.005","cumQuote":"300.005","avgPrice":"60001.00",'
                 '"status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"BUY",'
                 '"updateTime":9}')
    frames = [
        "\x04\x01a",
        '\x00{"id":1,"status":200,"result":{},"rateLimits":[{"rateLimitType":"ORDERS",'
        '"interval":"SECOND","intervalNum":10,"limit":1,"count":1}]}',
        "\x00" + otu("tg1", "NEW", "NEW", "0", "0"),
        "\x03\x02",
        "\x03\x01",
        '\x00{"id":2,"status":200,"result":%s}' % order_obj,
        '\x00{"id":3,"status":200,"result":[{"asset":"USDT","balance":"10","crossWalletBalance":"10"}]}',
        '\x00{"id":4,"status":200,"result":[{"symbol":"BTCUSDT","positionAmt":"0.005","entryPrice":"60001"}]}',
        "\x00" + otu("tg1", "TRADE", "FILLED", "0.005", "0.010"),
        "\x04\x02b",
        '\x00{"id":5,"status":429,"error":{"code":-1015,"msg":"x","data":{"retryAfter":5}}}',
        "\x05",
        "\x03\x04",
    ]
    out("gateway", "usdm-session", "\x00" + "\n".join(frames))
    out("gateway", "spot-open-orders", "\x01" + "\n".join([
        "\x04\x05c", "\x03\x01",
        '\x00{"id":2,"status":200,"result":[%s]}' % order_obj.replace("cumQuote", "cummulativeQuoteQty"),
        '\x00{"id":3,"status":200,"result":{"balances":[{"asset":"USDT","free":"1","locked":"0"}]}}',
        '\x00{"subscriptionId":0,"event":{"e":"listenKeyExpired","E":"1","listenKey":"k"}}',
        '\x02{"v":2,"type":"gateway","event":"timeout","id":1}',
    ]))


if __name__ == "__main__":
    main()
