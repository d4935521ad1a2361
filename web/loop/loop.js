// natter's /loop page: the loop's own figures (GET /api/stats) read once a
// second and drawn as SVG line charts over the last five minutes. No
// library, no build step; the page's DOM is its test contract:
//
// - each chart is a <section class="chart" data-chart="KEY">;
// - each series' latest value is an <output data-series="KEY"> whose
//   data-value attribute holds the number (text shows it with units);
// - #status says whether the server answers (class "down" when not).
//
// Counters (iterations, events, messages...) become rates: the difference
// between two readings over the time between them.

const POLL_MS = 1000;
// The charts span the time since the page opened, at least MIN_SPAN_S and
// at most WINDOW_S (what is kept).
const WINDOW_S = 300;
const MIN_SPAN_S = 30;
// The least top of a chart's scale, per unit: an idle chart reads 0 of
// something sensible.
const LEAST_TOP = { bytes: 1024, ms: 1, us: 10, rate: 1, count: 1, ratio: 1, percent: 1 };
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---------------------------------------------------------------- units

function si(v, digits = 3) {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(digits)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(digits)}k`;
  if (a >= 100 || a === 0) return `${Math.round(v)}`;
  return v.toPrecision(digits).replace(/\.?0+$/, '');
}

const UNITS = {
  rate: (v) => `${si(v)}/s`,
  count: (v) => si(v),
  ratio: (v) => si(v),
  bytes: (v) => {
    if (!Number.isFinite(v)) return '–';
    if (v >= 1 << 20) return `${(v / (1 << 20)).toPrecision(3)} MiB`;
    if (v >= 1 << 10) return `${(v / (1 << 10)).toPrecision(3)} KiB`;
    return `${Math.round(v)} B`;
  },
  ms: (v) => (Number.isFinite(v) ? `${si(v)} ms` : '–'),
  us: (v) => (Number.isFinite(v) ? `${si(v)} µs` : '–'),
  percent: (v) => (Number.isFinite(v) ? `${si(v)}%` : '–'),
};

// ---------------------------------------------------------------- charts

// Each chart: a title, one sentence (the OS idea, the file that makes it),
// a unit, and its series. A series reads `now` and `prev` (two /api/stats
// readings) and the seconds between them, and gives a number or null.
const delta = (f) => (now, prev, dt) => {
  if (!prev) return null;
  const d = f(now) - f(prev);
  return d >= 0 ? d / dt : null;
};
const per = (num, den) => (now, prev) => {
  if (!prev) return null;
  const d = den(now) - den(prev);
  return d > 0 ? (num(now) - num(prev)) / d : 0;
};
const gauge = (f) => (now) => f(now);

const CHARTS = [
  {
    key: 'wakeups',
    title: 'Wake-ups per second',
    why: 'Each wake-up is one return from epoll_wait (mio\u2019s Poll::poll): idle, the thread sleeps until a socket or a timer needs it.',
    file: 'src/server/mod.rs',
    unit: 'rate',
    series: [{ key: 'wakeups', label: 'wake-ups', get: delta((s) => s.loop_iterations) }],
  },
  {
    key: 'events',
    title: 'Events per wake-up',
    why: 'Under load one wake-up brings many ready sockets at once: the kernel batches readiness, and one thread serves them all in a turn.',
    file: 'src/server/mod.rs',
    unit: 'ratio',
    series: [
      {
        key: 'events_per_wakeup',
        label: 'events / wake-up',
        get: per((s) => s.poll_events, (s) => s.loop_iterations),
      },
    ],
  },
  {
    key: 'connections',
    title: 'Connections by kind',
    why: 'Every connection is a nonblocking socket registered once with epoll and kept in a slab; its first bytes decide what it speaks.',
    file: 'src/server/conns.rs, src/server/accept.rs',
    unit: 'count',
    series: [
      { key: 'conn_ws', label: 'WebSocket', get: gauge((s) => s.connections.ws) },
      { key: 'conn_line', label: 'line', get: gauge((s) => s.connections.line) },
      { key: 'conn_http', label: 'HTTP', get: gauge((s) => s.connections.http) },
      { key: 'conn_pending', label: 'not yet known', get: gauge((s) => s.connections.pending) },
      { key: 'conn_tls', label: 'of them TLS', get: gauge((s) => s.tls.open) },
    ],
  },
  {
    key: 'messages',
    title: 'Messages per second',
    why: 'Persist before send: each turn\u2019s messages are stored in one transaction before anyone is sent them (group commit).',
    file: 'src/hub/mod.rs, src/server/persist.rs',
    unit: 'rate',
    series: [{ key: 'messages', label: 'messages', get: delta((s) => s.messages) }],
  },
  {
    key: 'deliveries',
    title: 'Deliveries per second',
    why: 'Fan-out: an event is encoded once per wire format and the same buffer is queued to every member (a reference count, not a copy).',
    file: 'src/server/fanout.rs',
    unit: 'rate',
    series: [{ key: 'deliveries', label: 'deliveries', get: delta((s) => s.deliveries) }],
  },
  {
    key: 'backlog',
    title: 'Output the sockets did not take',
    why: 'Backpressure: when a socket\u2019s send buffer is full, write returns WouldBlock and the rest waits in user space until epoll says writable. Most left unsent after a flush in the last second.',
    file: 'src/server/outbox.rs, src/server/pressure.rs',
    unit: 'bytes',
    series: [
      { key: 'unsent_total', label: 'all queues', get: gauge((s) => s.output.unsent_recent?.total ?? 0) },
      { key: 'unsent_largest', label: 'largest queue', get: gauge((s) => s.output.unsent_recent?.largest ?? 0) },
    ],
  },
  {
    key: 'flush',
    title: 'Time in send()',
    why: 'Every write to a socket is a system call: the loop\u2019s time in its flush passes, each a writev per connection with output.',
    file: 'src/server/fanout.rs, src/server/outbox.rs',
    unit: 'ms',
    series: [
      { key: 'flush_ms', label: 'ms per second', get: delta((s) => s.flushes.us_total / 1000) },
      {
        key: 'flush_us_each',
        label: 'µs per flush',
        unit: 'us',
        get: per((s) => s.flushes.us_total, (s) => s.flushes.count),
      },
    ],
  },
  {
    key: 'store',
    title: 'Commits and checkpoints',
    why: 'fsync makes a write durable: one commit per turn on the loop; copying the WAL back (checkpoints) runs on the helper thread.',
    file: 'src/server/persist.rs, src/store/sqlite.rs',
    unit: 'ms',
    series: [
      {
        key: 'commit_ms',
        label: 'ms per commit',
        get: per((s) => s.store.commit_us_total / 1000, (s) => s.store.commits),
      },
      {
        key: 'checkpoint_ms',
        label: 'ms per checkpoint',
        get: per((s) => s.store.checkpoint_us_total / 1000, (s) => s.store.checkpoints),
      },
      { key: 'commits', label: 'commits', unit: 'rate', get: delta((s) => s.store.commits) },
    ],
  },
  {
    key: 'helper',
    title: 'The helper thread',
    why: 'Slow jobs (checkpoints, password hashing) go to one fixed helper thread, which hands results back through a mio::Waker (an eventfd).',
    file: 'src/server/helper.rs',
    unit: 'count',
    series: [
      { key: 'helper_queued', label: 'jobs queued', get: gauge((s) => s.helper.queued) },
      { key: 'password_jobs', label: 'passwords hashed', unit: 'rate', get: delta((s) => s.helper.password_jobs) },
    ],
  },
  {
    key: 'tls',
    title: 'TLS handshakes',
    why: 'TLS as a state machine on the same thread: rustls takes bytes in and gives records out, and a turn spends at most 2 ms starting handshakes.',
    file: 'src/server/tls.rs, src/server/stream.rs',
    unit: 'rate',
    off: (s) => (s.tls.enabled ? null : 'no certificate (start with --tls-cert or --tls-self-signed)'),
    series: [
      { key: 'tls_handshakes', label: 'begun', get: delta((s) => s.tls.handshakes) },
      { key: 'tls_done', label: 'done', get: delta((s) => s.tls.done) },
      { key: 'tls_failures', label: 'failed', get: delta((s) => s.tls.failures) },
    ],
  },
  {
    key: 'redis',
    title: 'Redis round trip',
    why: 'Another server reached through nonblocking sockets on the same Poll: commands pipelined once a turn, replies matched in order.',
    file: 'src/server/redis.rs',
    unit: 'ms',
    off: (s) => (s.redis ? null : 'not in use (start with --redis)'),
    series: [
      { key: 'redis_rtt', label: 'round trip', get: gauge((s) => (s.redis?.rtt_us ?? NaN) / 1000) },
      { key: 'redis_waiting', label: 'replies awaited', unit: 'count', get: gauge((s) => s.redis?.waiting ?? NaN) },
    ],
  },
];

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Builds each chart's card; returns { chart -> { section, svg, outputs } }. */
function build(root) {
  const built = new Map();
  for (const c of CHARTS) {
    const section = el('section', { class: 'chart', 'data-chart': c.key });
    section.append(el('h2', {}, c.title));
    const why = el('p', { class: 'why' }, `${c.why} `);
    why.append(el('code', {}, c.file));
    section.append(why);
    const svg = svgEl('svg', { role: 'img', 'aria-label': `${c.title}, up to the last five minutes` });
    section.append(svg);
    const legend = el('ul', { class: 'legend' });
    const outputs = [];
    c.series.forEach((s, i) => {
      const li = el('li', { class: `s${i}` }, `${s.label} `);
      const out = el('output', { 'data-series': s.key, 'data-value': '' }, '–');
      li.append(out);
      legend.append(li);
      outputs.push(out);
    });
    section.append(legend);
    root.append(section);
    built.set(c, { section, svg, outputs });
  }
  return built;
}

/** A round number at or above `v`: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** "−2.5 min", "−30 s": `s` seconds ago. */
function ago(s) {
  if (s === 0) return 'now';
  return s >= 120 ? `\u2212${+(s / 60).toFixed(1)} min` : `\u2212${Math.round(s)} s`;
}

/** Draws a chart's series (samples: [{ t, values: [..] }]) into its svg,
 * the last `span` seconds before `nowT`. */
function draw(chart, parts, samples, nowT, span) {
  const { svg } = parts;
  const w = Math.max(200, svg.clientWidth || 400);
  const h = Math.max(100, svg.clientHeight || 150);
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const left = 52;
  const right = 8;
  const top = 8;
  const bottom = 18;
  const pw = w - left - right;
  const ph = h - top - bottom;
  // The chart's own unit: series with another unit are shown in the
  // legend only.
  const drawn = chart.series
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => !s.unit || s.unit === chart.unit);
  let max = 0;
  for (const { i } of drawn) {
    for (const p of samples) {
      const v = p.values[i];
      if (Number.isFinite(v) && v > max) max = v;
    }
  }
  const least = Math.max(max, LEAST_TOP[chart.unit] || 1);
  // Bytes by powers of two (1 KiB, 2 KiB, 4 KiB...), the rest by 1-2-5.
  const top_ = chart.unit === 'bytes' ? 2 ** Math.ceil(Math.log2(least)) : niceMax(least);
  const fmt = UNITS[chart.unit];
  for (const f of [0, 0.5, 1]) {
    const y = top + ph - f * ph;
    svg.append(svgEl('line', { class: 'grid', x1: left, x2: w - right, y1: y, y2: y }));
    const label = svgEl('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' });
    label.textContent = fmt(f * top_);
    svg.append(label);
  }
  for (const [t, anchor] of [
    [span, 'start'],
    [span / 2, 'middle'],
    [0, 'end'],
  ]) {
    const x = left + ((span - t) / span) * pw;
    const label = svgEl('text', { x, y: h - 4, 'text-anchor': anchor });
    label.textContent = ago(t);
    svg.append(label);
  }
  for (const { i } of drawn) {
    const pts = [];
    for (const p of samples) {
      const v = p.values[i];
      if (!Number.isFinite(v)) continue;
      const age = (nowT - p.t) / 1000;
      if (age > span) continue;
      const x = left + ((span - age) / span) * pw;
      const y = top + ph - (Math.min(v, top_) / top_) * ph;
      pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    }
    if (pts.length) {
      svg.append(svgEl('polyline', { class: `line s${i}`, points: pts.join(' ') }));
    }
  }
}

// ---------------------------------------------------------------- polling

function start() {
  const root = document.getElementById('charts');
  const status = document.getElementById('status');
  const built = build(root);
  const history = new Map(CHARTS.map((c) => [c, []]));
  let prev = null;
  let prevT = 0;
  let failures = 0;
  const opened = Date.now();

  function redraw() {
    const nowT = Date.now();
    const span = Math.min(WINDOW_S, Math.max(MIN_SPAN_S, Math.ceil((nowT - opened) / 1000)));
    for (const [c, parts] of built) draw(c, parts, history.get(c), nowT, span);
  }

  function take(stats, t) {
    const dt = prev ? (t - prevT) / 1000 : 0;
    for (const c of CHARTS) {
      const parts = built.get(c);
      const off = c.off ? c.off(stats) : null;
      parts.section.classList.toggle('off', Boolean(off));
      parts.section.dataset.off = off || '';
      const values = c.series.map((s) => {
        if (off) return NaN;
        const v = dt > 0 || !prev ? s.get(stats, prev, dt || 1) : null;
        return v === null || v === undefined ? NaN : Number(v);
      });
      values.forEach((v, i) => {
        const out = parts.outputs[i];
        const unit = c.series[i].unit || c.unit;
        out.dataset.value = Number.isFinite(v) ? String(v) : '';
        out.textContent = off && i === 0 ? off : UNITS[unit](v);
      });
      const h = history.get(c);
      h.push({ t, values });
      while (h.length && t - h[0].t > WINDOW_S * 1000) h.shift();
    }
    prev = stats;
    prevT = t;
  }

  async function poll() {
    try {
      const r = await fetch('/api/stats', { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const stats = await r.json();
      take(stats, Date.now());
      failures = 0;
      status.classList.remove('down');
      const c = stats.connections;
      status.textContent = `Live: ${c.line + c.ws + c.http + c.pending} connections, ${stats.rooms} rooms; read every second.`;
      redraw();
    } catch (e) {
      failures += 1;
      status.classList.add('down');
      status.textContent = `The server does not answer (${e.message}); trying again every second.`;
    }
  }

  poll();
  setInterval(poll, POLL_MS);
  let pending = false;
  window.addEventListener('resize', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      redraw();
    });
  });
}

start();
