// HTTP polling, every 2 s: `/status` always (the per-stage latency is only there), and, while
// the WebSocket is down (the fallback mode), also `/api/instruments` and, with a token,
// `/api/orders`, `/api/positions` and `/api/portfolio`. A request still running when the
// next tick comes is not doubled: each tick waits for the previous one.

export const POLL_MS = 2000;

/** GET `path` as JSON: `{ ok, status, body }`; a network failure is `{ ok: false, status: 0 }`. */
export async function getJson(path, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const r = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
    let body = null;
    try {
      body = await r.json();
    } catch {
      body = null;
    }
    return { ok: r.ok, status: r.status, body };
  } catch (e) {
    return { ok: false, status: 0, body: null, error: e.message };
  }
}

export class Poller {
  /**
   * @param {object} hooks fallback() -> bool (WebSocket down), token() -> string|null,
   *   onStatus(res), onInstruments(res), onPrivate(kind, res)
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.busy = false;
    this.timer = 0;
    this.ticks = 0;
  }

  start() {
    this.tick();
    this.timer = setInterval(() => this.tick(), POLL_MS);
  }

  async tick() {
    if (this.busy) return;
    this.busy = true;
    try {
      this.ticks += 1;
      const fallback = this.hooks.fallback();
      const jobs = [getJson('/status').then((r) => this.hooks.onStatus(r, fallback))];
      if (fallback) {
        jobs.push(getJson('/api/instruments').then((r) => this.hooks.onInstruments(r)));
        const token = this.hooks.token();
        if (token) {
          for (const kind of ['orders', 'positions', 'portfolio']) {
            jobs.push(getJson(`/api/${kind}`, token).then((r) => this.hooks.onPrivate(kind, r)));
          }
        }
      }
      await Promise.all(jobs);
    } finally {
      this.busy = false;
    }
  }
}
