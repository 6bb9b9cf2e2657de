// The page's one WebSocket to tape: connect, reconnect with exponential backoff and jitter,
// request ids and their replies, and a liveness check. What to (re)subscribe is the caller's:
// `onOpen` runs on every new connection and must send everything the page shows.
//
// States (the badge shows them): `connecting` (a socket is opening, or open and waiting for
// the server's first reply), `connected` (the server answered: a socket that opens and is
// closed at once, e.g. with 4003, is not a success), `reconnecting` (waiting `retryAt`),
// `failed` (MAX_ATTEMPTS failures in a row; it keeps trying, slowly, and `retryNow` skips
// the wait).

/** First retry waits up to this, ms; doubles per failure. */
export const INITIAL_BACKOFF_MS = 500;
/** Retry delay cap, ms. */
export const MAX_BACKOFF_MS = 15000;
/** Failures in a row after which the badge says "failed". */
export const MAX_ATTEMPTS = 8;
/** A socket that has not opened by then is given up, ms. */
export const OPEN_TIMEOUT_MS = 8000;
/** Ping period while connected, ms; no reply within PING_TIMEOUT_MS drops the socket. */
export const PING_EVERY_MS = 15000;
export const PING_TIMEOUT_MS = 10000;
/** A request without a reply in this long is rejected, ms. */
export const REQUEST_TIMEOUT_MS = 10000;

/** The delay before retry number `failures` (1, 2, ...): the exponential step with "equal
 *  jitter" (half fixed, half random), so the countdown means something and a fleet of pages
 *  does not reconnect in lockstep. `random` is injectable for tests. */
export function backoff(failures, random = Math.random) {
  const step = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

export class Connection {
  /**
   * @param {string} url ws:// or wss:// URL
   * @param {object} hooks onOpen(conn), onMessage(msg, arrivalMs), onState(state), now()
   */
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.ws = null;
    this.state = { name: 'connecting', failures: 0, retryAt: 0, closeReason: '' };
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject, timer }
    this.timers = { retry: 0, open: 0, ping: 0, pong: 0 };
    this.answered = false;
  }

  start() {
    this.connect();
  }

  setState(patch) {
    Object.assign(this.state, patch);
    this.hooks.onState({ ...this.state });
  }

  connect() {
    clearTimeout(this.timers.retry);
    this.answered = false;
    this.setState({ name: this.state.failures >= MAX_ATTEMPTS ? 'failed' : 'connecting', retryAt: 0 });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.failed(`cannot open ${this.url}: ${e.message}`);
      return;
    }
    this.ws = ws;
    this.timers.open = setTimeout(() => {
      if (ws.readyState !== WebSocket.OPEN) ws.close();
    }, OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(this.timers.open);
      this.hooks.onOpen(this);
      this.schedulePing();
    };
    ws.onmessage = (ev) => {
      const arrival = this.hooks.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // tape sends only JSON; anything else is not ours to act on
      }
      if (!this.answered) {
        this.answered = true;
        this.setState({ name: 'connected', failures: 0, closeReason: '' });
      }
      if (msg.id !== undefined && this.pending.has(msg.id)) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        p.resolve(msg);
      }
      this.hooks.onMessage(msg, arrival);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.teardown();
      const why = ev.code === 1006 ? 'no connection' : `closed ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}`;
      // A connection the server answered counts as a success even if it drops later: the
      // retry after it starts the backoff over.
      this.failed(why);
    };
    // onerror is always followed by onclose, which does the work.
    ws.onerror = () => {};
  }

  /** Forgets the current socket: its timers and its unanswered requests. */
  teardown() {
    this.ws = null;
    clearTimeout(this.timers.open);
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('connection closed'));
    }
    this.pending.clear();
  }

  /** Closes the session and opens a new one at once (a new token: a session authenticates
   *  only once). Not a failure. */
  restart() {
    clearTimeout(this.timers.retry);
    const ws = this.ws;
    this.teardown();
    if (ws) {
      ws.onmessage = null;
      // Closing a socket still connecting makes browsers log an error: let it open first.
      if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000, 'new session');
      else ws.close(1000, 'new session');
    }
    this.state.failures = 0;
    this.connect();
  }

  failed(reason) {
    const failures = this.state.failures + 1;
    const delay = failures > MAX_ATTEMPTS ? MAX_BACKOFF_MS * 2 : backoff(failures);
    const retryAt = this.hooks.now() + delay;
    this.setState({ name: failures >= MAX_ATTEMPTS ? 'failed' : 'reconnecting', failures, retryAt, closeReason: reason });
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  /** Skips the wait before the next attempt. */
  retryNow() {
    if (this.ws) return;
    this.connect();
  }

  /** True while a socket is open (requests can be sent), answered yet or not. */
  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** True while the server is answering. */
  get connected() {
    return this.state.name === 'connected' && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends `req` with a fresh `id`; resolves with the reply that echoes it (an `error` too). */
  request(req) {
    return new Promise((resolve, reject) => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new Error('not connected'));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('no reply'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...req, id }));
    });
  }

  schedulePing() {
    clearTimeout(this.timers.ping);
    this.timers.ping = setTimeout(() => {
      const ws = this.ws;
      if (!ws) return;
      this.timers.pong = setTimeout(() => ws.close(4000, 'no pong'), PING_TIMEOUT_MS);
      this.request({ type: 'ping' })
        .then(() => {
          clearTimeout(this.timers.pong);
          this.schedulePing();
        })
        .catch(() => {});
    }, PING_EVERY_MS);
  }
}
