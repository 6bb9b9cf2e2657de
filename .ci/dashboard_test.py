#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium (Debian's) driven by Selenium, against
`tape run` on the bundled session, with a Python `websockets` client that rebuilds the same
book from the protocol as the reference.

Scenarios, each with a PNG screenshot in --shots:
  market      the page loads without console errors, the badge turns connected, and the
              ladder shows the same top of book as the reference client at the same update_id
  restart     tape is stopped and started again on the same port: the badge goes through
              reconnecting to connected, and the ladder recovers with a fresh snapshot
  fallback    the WebSocket is refused (max_anonymous_per_ip = 1, the slot taken): the page
              says so, polls /status, shows the venues from it; then connects when it can
  desk        examples/desk.toml with a token: a refused token renders nothing private; the
              ticket places a bracket on the paper venue, the position appears with the right
              quantity, an order is cancelled, and a risk-limit breach shows the alert

--bench --journal DIR instead measures the page's own "behind by" while tape serves DIR
(BENCHMARKS.md: a `tape synth` session that gives the page about 1,000 messages/s).

Every wait is bounded (WebDriverWait, timeouts); every process is stopped at the end; only
127.0.0.1 is used.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import websockets
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
SYMBOL = "usdm:BTCUSDT"
WAIT = 45  # seconds: the longest any one condition may take (books sync within ~5 s)


def log(*a):
    print("dashboard:", *a, flush=True)


class Tape:
    """A `tape run` process; `url` is its WebSocket URL as it printed it."""

    def __init__(self, binary, args, env=None):
        self.binary = binary
        self.args = args
        self.env = env
        self.proc = None
        self.url = None
        self.lines = []

    def start(self):
        cmd = [self.binary, "run", "--status-interval", "0", "--exit-after", "600", *self.args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        # The first line names the URL; read it on a thread so the wait is bounded.
        got = threading.Event()

        def reader():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if line.startswith("tape serving "):
                    self.url = line.split()[2]
                    got.set()
            got.set()

        threading.Thread(target=reader, daemon=True).start()
        if not got.wait(30) or not self.url:
            self.stop()
            raise SystemExit(f"tape run did not report its URL: {self.lines[-5:]}")
        self.base = self.url.replace("ws://", "http://").rsplit("/", 1)[0]
        self.port = int(self.base.rsplit(":", 1)[1])
        wait_for(lambda: books_synced(self.base), 30, "tape's books to sync")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def get_json(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def books_synced(base):
    try:
        books = get_json(base + "/status")["books"]
    except OSError:
        return False
    return any(b["market"] == "usdm" and b["symbol"] == "BTCUSDT" and b["state"] == "Synced" for b in books)


def wait_for(cond, secs, what):
    """Polls `cond` (a check of a server's state, not synchronisation of the test) until it
    is true or `secs` pass."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {secs} s waiting for {what}")


class Reference:
    """Rebuilds one instrument's book from the protocol on its own thread and records the
    top of book after every update: update_id -> (bid, bid_qty, ask, ask_qty)."""

    def __init__(self, url, symbol):
        self.url = url
        self.symbol = symbol
        self.tops = {}
        self.lock = threading.Lock()
        self.error = None
        self.stopping = False
        self.messages = 0
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        self.thread.join(10)

    def top(self, update_id):
        with self.lock:
            return self.tops.get(update_id)

    async def run(self):
        try:
            async with websockets.connect(self.url, open_timeout=10) as ws:
                await ws.send(json.dumps({"type": "subscribe", "id": 1, "channels": ["book"], "symbols": [self.symbol], "depth": 1000}))
                bids, asks, seq = {}, {}, None
                while not self.stopping:
                    try:
                        m = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        continue
                    if m.get("channel") != "book":
                        continue
                    self.messages += 1
                    if m["type"] == "status":
                        bids, asks, seq = {}, {}, None
                        continue
                    d = m["data"]
                    if m["type"] == "snapshot":
                        bids = {p: q for p, q in d["bids"]}
                        asks = {p: q for p, q in d["asks"]}
                    else:
                        if seq is None:
                            continue
                        if m["seq"] != seq + 1:
                            raise RuntimeError(f"reference client: seq gap {seq} -> {m['seq']}")
                        for side, levels in ((bids, d["bids"]), (asks, d["asks"])):
                            for p, q in levels:
                                if Decimal(q) == 0:
                                    side.pop(p, None)
                                else:
                                    side[p] = q
                    seq = m["seq"]
                    if bids and asks:
                        b = max(bids, key=Decimal)
                        a = min(asks, key=Decimal)
                        with self.lock:
                            self.tops[d["update_id"]] = (b, bids[b], a, asks[a])
        except Exception as e:  # reported by the test, which fails on it
            if not self.stopping:
                self.error = repr(e)


def make_driver():
    o = webdriver.ChromeOptions()
    o.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,1500",
    ):
        o.add_argument(a)
    o.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="tape-dash-chromium-"))
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=o)


# Browser log entries a test may accept while tape is down: the browser reporting refused
# connections. Anything else at SEVERE (an uncaught exception, a CSP violation, a 404) fails.
NETWORK_DOWN = re.compile(r"ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|Failed to fetch|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET")


def check_console(driver, allow_network_errors=False):
    bad = []
    for e in driver.get_log("browser"):
        if e["level"] != "SEVERE":
            continue
        if allow_network_errors and NETWORK_DOWN.search(e["message"]):
            continue
        bad.append(e["message"])
    if bad:
        raise SystemExit("console errors:\n  " + "\n  ".join(bad))


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def ladder(driver):
    return js(driver, "const d = document.getElementById('ladder').dataset; return {...d};")


def badge(driver):
    return js(driver, "const b = document.getElementById('badge'); return {state: b.dataset.state, text: b.textContent, mode: document.getElementById('mode').dataset.mode};")


def until(driver, cond, what, secs=WAIT):
    try:
        return WebDriverWait(driver, secs, poll_frequency=0.1).until(lambda d: cond(d))
    except TimeoutException:
        raise SystemExit(f"timed out after {secs} s waiting for {what}; badge {badge(driver)}, ladder {ladder(driver)}")


def shot(driver, shots, name):
    path = shots / f"{name}.png"
    js(driver, "window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    log("screenshot", path)


def matches_reference(driver, ref, seen):
    """True once the ladder has shown `need` distinct update ids the reference client also
    reached, each with exactly its top of book; a difference fails at once."""
    lad = ladder(driver)
    if lad.get("state") != "live" or not lad.get("updateId"):
        return False
    uid = int(lad["updateId"])
    top = ref.top(uid)
    if top is None:
        return False
    page = (lad["bestBid"], lad["bestBidQty"], lad["bestAsk"], lad["bestAskQty"])
    if page != top:
        raise SystemExit(f"ladder at update_id {uid} shows {page}, the protocol client {top}")
    seen.add(uid)
    return len(seen) >= 3


def scenario_market(driver, tape, shots):
    ref = Reference(tape.url, SYMBOL).start()
    try:
        driver.get(f"{tape.base}/#{SYMBOL}")
        until(driver, lambda d: badge(d)["state"] == "connected", "the badge to say connected")
        instruments = [f"{i['market']}:{i['symbol']}" for i in get_json(tape.base + "/api/instruments")["instruments"]]
        options = js(driver, "return [...document.querySelectorAll('#instrument option')].map(o => o.value);")
        if options != instruments:
            raise SystemExit(f"picker {options} != /api/instruments {instruments}")
        seen = set()
        until(driver, lambda d: matches_reference(d, ref, seen), "the ladder to match the protocol client at 3 update ids")
        log(f"ladder matched the protocol client at update ids {sorted(seen)}")
        until(driver, lambda d: js(d, "return document.querySelectorAll('#trades tr').length") > 0, "trades on the tape")
        until(driver, lambda d: js(d, "return document.querySelectorAll('#venues li[data-state]').length") >= 3, "the venues")
        until(driver, lambda d: js(d, "return +(document.getElementById('latency-stages').dataset.stages || 0)") >= 3, "per-stage latency")
        until(driver, lambda d: js(d, "return document.getElementById('behind').dataset.ms") != "", "the behind-by figure")
        until(driver, lambda d: js(d, "return document.getElementById('tk-last').textContent") != "–", "the ticker")
        venues = js(driver, "return [...document.querySelectorAll('#venues li[data-state]')].map(l => [l.dataset.venue, l.dataset.state]);")
        log("venues", venues)
        check_console(driver)
        if ref.error:
            raise SystemExit(ref.error)
        shot(driver, shots, "market")
    finally:
        ref.stop()


def scenario_restart(driver, tape, shots):
    before = int(ladder(driver)["snapshots"])
    tape.stop()
    # One read of state and text together: the badge moves on between attempts.
    down = until(driver, lambda d: (lambda b: b if b["state"] == "reconnecting" and b["mode"] == "polling" else None)(badge(d)), "the badge to say reconnecting")
    text = down["text"]
    if not re.fullmatch(r"reconnecting in \d+ s", text):
        raise SystemExit(f"badge text while down: {text!r}")
    until(driver, lambda d: ladder(d)["state"] != "live", "the ladder to be marked stale")
    until(driver, lambda d: js(d, "return document.getElementById('venues').dataset.stale") == "true", "the venues marked last-known")
    shot(driver, shots, "reconnecting")
    log("badge while down:", text)
    tape.args = [a if not a.startswith("127.0.0.1:") else f"127.0.0.1:{tape.port}" for a in tape.args]
    tape.start()
    ref = Reference(tape.url, SYMBOL).start()
    try:
        until(driver, lambda d: badge(d)["state"] == "connected", "the badge to say connected again")
        until(driver, lambda d: int(ladder(d)["snapshots"]) > before, "a fresh snapshot after the reconnect")
        seen = set()
        until(driver, lambda d: matches_reference(d, ref, seen), "the ladder to match the protocol client after the restart")
        log(f"after the restart the ladder matched at update ids {sorted(seen)}")
        check_console(driver, allow_network_errors=True)
        shot(driver, shots, "reconnected")
    finally:
        ref.stop()


def scenario_fallback(binary, shots, tmp):
    cfg = Path(tmp) / "one-anonymous.toml"
    cfg.write_text("[limits]\nmax_anonymous_per_ip = 1\n")
    tape = Tape(binary, ["--config", str(cfg), "--listen", "127.0.0.1:0"]).start()
    driver = None
    try:
        holder = Reference(tape.url, SYMBOL).start()  # takes the address's one anonymous slot
        wait_for(lambda: holder.messages > 0, WAIT, "the slot holder's first message")
        driver = make_driver()
        driver.get(f"{tape.base}/#{SYMBOL}")
        until(driver, lambda d: badge(d)["mode"] == "polling" and int(js(d, "return +document.getElementById('badge').dataset.failures")) >= 1, "the page to fall back to polling")
        until(driver, lambda d: js(d, "return document.querySelectorAll('#venues li[data-state]').length") >= 3, "venues from polled /status")
        banner = js(driver, "return document.getElementById('banner').textContent")
        if "/status" not in banner:
            raise SystemExit(f"the banner does not say the page polls: {banner!r}")
        shot(driver, shots, "fallback")
        holder.stop()
        until(driver, lambda d: badge(d)["state"] == "connected" and badge(d)["mode"] == "live", "the WebSocket once the slot is free", secs=WAIT)
        until(driver, lambda d: ladder(d)["state"] == "live", "the ladder after the fallback")
        check_console(driver, allow_network_errors=True)
        log("fallback: polled while refused, then connected")
    finally:
        if driver:
            driver.quit()
        tape.stop()


def fill(driver, values):
    """Types each value as a person would (a select is chosen, a hidden field just emptied)."""
    for id_, v in values.items():
        e = driver.find_element(By.ID, id_)
        if not e.is_displayed():
            js(driver, "arguments[0].value = arguments[1];", e, v)
        elif e.tag_name == "select":
            js(driver, "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));", e, v)
        else:
            e.clear()
            if v:
                e.send_keys(v)


def feedback(driver):
    return js(driver, "const f = document.getElementById('t-feedback'); return {state: f.dataset.state, code: f.dataset.code, text: f.textContent};")


def submit_and_wait(driver, what):
    js(driver, "document.getElementById('t-feedback').dataset.state = ''")
    driver.find_element(By.ID, "t-submit").click()
    until(driver, lambda d: feedback(d)["state"] in ("ok", "error"), f"the reply to {what}")
    return feedback(driver)


def scenario_desk(binary, shots, tmp):
    env = dict(os.environ, TAPE_JWT_SECRET=secrets.token_urlsafe(48))
    desk = str(ROOT / "examples/desk.toml")
    token = subprocess.run(
        [binary, "token", "--config", desk, "--user", "alice"], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    tape = Tape(binary, ["--config", desk, "--listen", "127.0.0.1:0"], env=env).start()
    driver = make_driver()
    try:
        driver.get(f"{tape.base}/#{SYMBOL}")
        until(driver, lambda d: badge(d)["state"] == "connected", "the badge to say connected")
        until(driver, lambda d: ladder(d)["state"] == "live", "the ladder")
        state = js(driver, "return document.getElementById('account').dataset.state")
        if state != "locked" or js(driver, "return document.getElementById('account-body').hidden") is not True:
            raise SystemExit(f"without a token the account must be locked and hidden: {state}")
        # A refused token: nothing private, and it is forgotten.
        fill(driver, {"token": token[:-4] + "AAAA"})
        driver.find_element(By.ID, "token-use").click()
        until(driver, lambda d: js(d, "return document.getElementById('account').dataset.state") == "refused", "the bad token to be refused")
        if js(driver, "return document.getElementById('account-body').hidden") is not True or js(driver, "return sessionStorage.length") != 0:
            raise SystemExit("a refused token rendered private data or was kept")
        # The real token.
        fill(driver, {"token": token})
        driver.find_element(By.ID, "token-use").click()
        until(driver, lambda d: js(d, "return document.getElementById('account').dataset.state") == "accepted", "the token to be accepted")
        until(driver, lambda d: "alice" in js(d, "return document.getElementById('account-user').textContent"), "the user's name")
        if js(driver, "return localStorage.length") != 0 or token in driver.current_url:
            raise SystemExit("the token must live in sessionStorage only")
        until(driver, lambda d: ladder(d)["state"] == "live" and badge(d)["state"] == "connected", "the ladder after signing in")
        inst = next(i for i in get_json(tape.base + "/api/instruments")["instruments"] if f"{i['market']}:{i['symbol']}" == SYMBOL)
        tick = Decimal(1).scaleb(-inst["price_scale"])
        lad = ladder(driver)
        bid, ask = Decimal(lad["bestBid"]), Decimal(lad["bestAsk"])
        tp = str((ask * Decimal("1.02")).quantize(tick, ROUND_DOWN))
        sl = str((bid * Decimal("0.98")).quantize(tick, ROUND_DOWN))
        # A bracket: market buy 0.010 with take-profit and stop-loss.
        fill(driver, {"t-type": "market", "t-qty": "0.010", "t-tp": tp, "t-sl": sl, "t-price": ""})
        fb = submit_and_wait(driver, "the bracket")
        if fb["state"] != "ok" or "adv" not in fb["text"]:
            raise SystemExit(f"bracket refused: {fb}")
        log("bracket:", fb["text"])
        until(driver, lambda d: js(d, "const r = document.querySelector('#positions tr[data-instrument=\"usdm:BTCUSDT\"]'); return r && [r.dataset.qty, r.dataset.side].join(' ')") == "0.010 long", "the position of 0.010 long")
        until(driver, lambda d: js(d, "return [...document.querySelectorAll('#advanced tr')].map(r => r.dataset.state).join(',')") == "armed", "the armed bracket")
        shot(driver, shots, "desk-bracket")
        # A resting limit order far below the market, then cancel it from its row.
        below = str((bid * Decimal("0.95")).quantize(tick, ROUND_DOWN))
        fill(driver, {"t-type": "limit", "t-price": below, "t-qty": "0.010", "t-tp": "", "t-sl": ""})
        fb = submit_and_wait(driver, "the limit order")
        if fb["state"] != "ok":
            raise SystemExit(f"limit order refused: {fb}")
        coid = re.search(r": order (\S+?)(?:,|$)", fb["text"]).group(1)
        row = f"#orders tr[data-order=\"{coid}\"]"
        until(driver, lambda d: js(d, f"return !!document.querySelector('{row}')"), f"order {coid} in open orders")
        driver.find_element(By.CSS_SELECTOR, f"{row} button[data-cancel]").click()
        until(driver, lambda d: not js(d, f"return !!document.querySelector('{row}')"), f"order {coid} to leave open orders")
        until(driver, lambda d: feedback(d)["state"] == "ok" and "cancel order accepted" in feedback(d)["text"], "the cancel's ack")
        # Cancel the bracket too.
        driver.find_element(By.CSS_SELECTOR, "#advanced tr[data-state=armed] button[data-cancel]").click()
        until(driver, lambda d: js(d, "return [...document.querySelectorAll('#advanced tr')].map(r => r.dataset.state).join(',')") == "canceled", "the bracket to be canceled")
        log("cancel: limit order and bracket canceled from their rows")
        # A risk-limit breach: 5 > desk.max_order_qty = 1.
        fill(driver, {"t-type": "market", "t-qty": "5.000", "t-price": ""})
        fb = submit_and_wait(driver, "the oversized order")
        if fb["code"] != "4021":
            raise SystemExit(f"expected 4021, got {fb}")
        until(driver, lambda d: js(d, "return [...document.querySelectorAll('.toast')].some(t => t.textContent.startsWith('risk alert: order_'))"), "the risk alert notification")
        alert = js(driver, "return [...document.querySelectorAll('.toast')].map(t => t.textContent).join(' | ')")
        log("risk:", fb["text"], "| alert:", alert)
        check_console(driver)
        shot(driver, shots, "desk-risk")
    finally:
        driver.quit()
        tape.stop()


def bench(binary, shots, journal, secs):
    tape = Tape(binary, ["--listen", "127.0.0.1:0", "--journal", journal]).start()
    driver = make_driver()
    try:
        driver.get(f"{tape.base}/#{SYMBOL}")
        until(driver, lambda d: ladder(d)["state"] == "live", "the ladder")
        rows = []
        end = time.monotonic() + secs
        while time.monotonic() < end:
            # Sampling the page's figures once a second is the measurement, not synchronisation.
            time.sleep(1)
            rows.append(js(driver, "return window.tapeDashboard.stats()"))
        shot(driver, shots, "bench")
        rates = [r["rate"] for r in rows]
        p50 = sorted(r["behind"]["p50"] for r in rows if r["behind"]["n"])
        p99 = [r["behind"]["p99"] for r in rows if r["behind"]["n"]]
        mx = [r["behind"]["max"] for r in rows if r["behind"]["n"]]
        t2b = rows[-1]["tickToBrowser"]
        print(json.dumps({
            "journal": journal,
            "seconds": secs,
            "messages_per_sec_mean": round(sum(rates) / len(rates)),
            "messages_per_sec_max": max(rates),
            "behind_ms_p50_median": round(p50[len(p50) // 2], 2),
            "behind_ms_p99_worst_5s": round(max(p99), 2),
            "behind_ms_max": round(max(mx), 2),
            "tick_to_browser_ms_p50": round(t2b["p50"], 2),
            "tick_to_browser_ms_p99": round(t2b["p99"], 2),
            "gaps": rows[-1]["gaps"],
        }, indent=1))
        check_console(driver)
    finally:
        driver.quit()
        tape.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tape", default=str(ROOT / "target/release/tape"))
    ap.add_argument("--shots", default=str(ROOT / "target/dashboard-screenshots"))
    ap.add_argument("--bench", action="store_true", help="measure behind-by instead of testing")
    ap.add_argument("--journal", help="--bench: the journal to serve (tape synth ...; see BENCHMARKS.md)")
    ap.add_argument("--secs", type=int, default=30, help="--bench: seconds measured")
    ap.add_argument("--only", choices=["market", "fallback", "desk"], help="run one scenario (market includes restart)")
    args = ap.parse_args()
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.bench:
        if not args.journal:
            ap.error("--bench needs --journal")
        bench(args.tape, shots, args.journal, args.secs)
        return
    passed = 0
    with tempfile.TemporaryDirectory(prefix="tape-dash-") as tmp:
        if args.only in (None, "market"):
            tape = Tape(args.tape, ["--listen", "127.0.0.1:0"]).start()
            driver = make_driver()
            try:
                scenario_market(driver, tape, shots)
                passed += 1
                scenario_restart(driver, tape, shots)
                passed += 1
            finally:
                driver.quit()
                tape.stop()
        if args.only in (None, "fallback"):
            scenario_fallback(args.tape, shots, tmp)
            passed += 1
        if args.only in (None, "desk"):
            scenario_desk(args.tape, shots, tmp)
            passed += 1
    log(f"{time.monotonic() - started:.0f} s")
    print(f"dashboard: {passed} passed, 0 failed")


if __name__ == "__main__":
    main()
