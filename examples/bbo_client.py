#!/usr/bin/env python3
"""Subscribe to tape's bbo channel and print every update.

    pip install websockets
    python3 examples/bbo_client.py                       # ws://127.0.0.1:8080/ws, BTCUSDT
    python3 examples/bbo_client.py --url ws://host:port/ws --symbol usdm:ETHUSDT --count 20

Each line shows the instrument, bid and ask with quantities, the spread, and the
tick-to-client latency (now - recv_ns; meaningful when client and tape share a host clock).
With --channels it also prints trades, ticker and book messages (one line each).
"""

import argparse
import asyncio
import json
import sys
import time

import websockets


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--channels", default="bbo", help="comma-separated: bbo,trades,ticker,book")
    ap.add_argument("--count", type=int, default=0, help="stop after N market messages (0 = never)")
    ap.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    args = ap.parse_args()
    channels = args.channels.split(",")
    seen = {}
    async with websockets.connect(args.url, open_timeout=args.timeout) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channels": channels, "symbols": [args.symbol]}))
        deadline = time.monotonic() + args.timeout
        n = 0
        while args.count == 0 or n < args.count:
            left = deadline - time.monotonic()
            if args.count and left <= 0:
                print(f"timed out after {n} messages", file=sys.stderr)
                return 1
            raw = await asyncio.wait_for(ws.recv(), timeout=left if args.count else None)
            m = json.loads(raw)
            if m["type"] == "error":
                print(f"error {m['code']}: {m['message']}", file=sys.stderr)
                return 1
            if m["type"] in ("subscribed", "pong"):
                continue
            n += 1
            ch = m["channel"]
            seen[ch] = seen.get(ch, 0) + 1
            lat_us = (time.time_ns() - m["recv_ns"]) / 1e3
            d = m["data"]
            inst = f"{m['market']}:{m['symbol']}"
            if ch == "bbo" and m["type"] == "update":
                print(f"{inst:16} bid {d['bid_qty']} @ {d['bid']}  ask {d['ask_qty']} @ {d['ask']}"
                      f"  spread {d['spread']}  seq {m['seq']}  {lat_us:.0f} us")
            else:
                print(f"{inst:16} {ch} {m['type']} seq {m['seq']}  {lat_us:.0f} us")
    print("seen: " + " ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
