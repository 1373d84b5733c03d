// The casebook dashboard: polls the monitor's status, draws replica lag, drives the lab
// controls and runs a create-then-read journey through @freshgate/client, showing which node
// served each read and why.
import { createFreshFetch } from '@freshgate/client';

interface NodeStatus {
  name: string;
  replayLsn?: string | null;
  currentLsn?: string | null;
  lagMs?: number | null;
  health: string;
  circuit: string;
}
interface Status {
  primary: NodeStatus;
  replicas: NodeStatus[];
  counters: {
    routes: Record<string, { primary: number; replica: number }>;
    byRoute?: Record<
      string,
      { contract: string; primary: number; replica: number; reasons: Record<string, number> }
    >;
    fallbacks: Record<string, number>;
    degraded: Record<string, number>;
    budgetExhausted: number;
  };
  /** The read-after-write probe per replica (`null` when it is off). */
  probe: Record<string, { delayMs: number | null; pendingMs: number }> | null;
  lab: boolean;
  framework: string;
  pinStore: string;
  /** The Redis pin store's epochs, trust and write-back counts (`null` with the memory store). */
  pinStoreStats?: {
    epochChanges: number;
    vouched: boolean;
    writeBackPending: number;
    writtenBack: number;
  } | null;
}

interface LabState {
  replica: string;
  replay: 'running' | 'pause requested' | 'paused';
  delayMs: number;
}
interface LagPoint {
  t: number;
  lagMs: number | null;
  health: string;
  paused: boolean | null;
}
/** `GET /api/freshgate/lag`: the monitor's lag history, recorded by the server since start-up. */
interface LagHistory {
  windowMs: number;
  now: number;
  replicas: Record<string, LagPoint[]>;
  lab: LabState[] | null;
}

const freshFetch = createFreshFetch();
const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#bc8cff', '#f778ba'];
let history: LagHistory | undefined;
let last: Status | undefined;
/**
 * The nodes table's rows, one per node, made once and refreshed in place on every poll: a row
 * made afresh would take the focus from someone typing in its delay input and swallow a click
 * that lands while the page polls.
 */
interface NodeRow {
  row: HTMLElement;
  /** Replay or current LSN, lag, probe, health, circuit. */
  live: HTMLElement[];
  /** The lab cell: empty until the server says lab mode is on. */
  lab: HTMLElement;
  /** A replica's lab controls, once made. */
  controls?: LabControls;
}
const nodeRows = new Map<string, NodeRow>();

/** A replica's lab controls. The delay input shows the replica's delay unless being edited. */
interface LabControls {
  input: HTMLInputElement;
  edited: boolean;
  state: HTMLElement;
}

const $ = <T extends Element = HTMLElement>(selector: string) =>
  document.querySelector(selector) as T;

function lsnValue(text: string | null | undefined): bigint | null {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text ?? '');
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : null;
}

function el(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const badge = (value: string) => el('span', { class: `badge ${value}` }, value);

async function poll(): Promise<void> {
  try {
    const [status, lag] = await Promise.all([
      fetch('/api/freshgate/status').then((r) => r.json() as Promise<Status>),
      fetch('/api/freshgate/lag').then((r) => r.json() as Promise<LagHistory>),
    ]);
    last = status;
    history = lag;
    render(status);
  } catch {
    $('#cluster').textContent = 'status unavailable — is the server running?';
  }
}

/** Store epochs, whether a missing pin is trusted now (else: barrier reads), pins written back. */
function pinStoreNote(status: Status): string {
  const s = status.pinStoreStats;
  if (!s) return '';
  return ` (epoch changes ${s.epochChanges} · absence ${s.vouched ? 'trusted' : 'distrusted: barrier reads'} · pins written back ${s.writtenBack}, pending ${s.writeBackPending})`;
}

/**
 * The probe's view of a replica: how long its last probe write took to show, or how long the
 * oldest one has been waiting when that is longer.
 */
function probeText(probe: { delayMs: number | null; pendingMs: number } | undefined): string {
  if (!probe) return '—';
  if (probe.pendingMs > (probe.delayMs ?? 0)) return `waiting ${probe.pendingMs} ms`;
  return probe.delayMs === null ? '—' : `${Math.round(probe.delayMs)} ms`;
}

function render(status: Status): void {
  $('#cluster').textContent =
    `${status.framework} · pin store: ${status.pinStore}${pinStoreNote(status)} · primary ${status.primary.currentLsn ?? '?'} · lab mode ${status.lab ? 'on' : 'off'}`;
  const rows = [
    refreshRow(nodeRow(status.primary.name, 'primary'), [
      status.primary.currentLsn ?? '—',
      '—',
      '—',
      badge(status.primary.health),
      badge(status.primary.circuit),
    ]),
    ...status.replicas.map((r) => {
      const row = nodeRow(r.name, 'replica');
      if (status.lab)
        refreshLab(
          row,
          r.name,
          history?.lab?.find((s) => s.replica === r.name),
        );
      return refreshRow(row, [
        r.replayLsn ?? '—',
        r.lagMs == null ? '—' : `${r.lagMs} ms`,
        probeText(status.probe?.[r.name]),
        badge(r.health),
        badge(r.circuit),
      ]);
    }),
  ];
  const body = $('#nodes tbody');
  if (rows.length !== body.children.length || rows.some((row, i) => body.children[i] !== row)) {
    body.replaceChildren(...rows);
  }
  $('#lab-note').textContent = status.lab
    ? ''
    : 'Lab controls are off: start with CASEBOOK_LAB=1 (pnpm demo does).';
  $('#routes tbody').replaceChildren(
    ...Object.entries(status.counters.routes).map(([contract, c]) => {
      const total = c.primary + c.replica;
      return el(
        'tr',
        {},
        el('td', {}, contract),
        el('td', { class: 'num' }, String(c.primary)),
        el('td', { class: 'num' }, String(c.replica)),
        el('td', { class: 'num' }, total ? `${Math.round((100 * c.replica) / total)} %` : '—'),
      );
    }),
  );
  const byRoute = Object.entries(status.counters.byRoute ?? {});
  $('#route-reads tbody').replaceChildren(
    ...(byRoute.length
      ? byRoute.map(([route, c]) => {
          const reasons = Object.entries(c.reasons)
            .sort((a, b) => b[1] - a[1])
            .map(([reason, n]) => `${reason} ×${n}`)
            .join(', ');
          return el(
            'tr',
            { 'data-route': route },
            el('td', {}, el('code', {}, route), el('br'), el('small', {}, c.contract)),
            el('td', { class: 'num' }, String(c.primary)),
            el('td', { class: 'num' }, String(c.replica)),
            el('td', { class: 'reasons' }, reasons || '—'),
          );
        })
      : [el('tr', {}, el('td', {}, 'no reads yet'))]),
  );
  countTable('#fallbacks', status.counters.fallbacks);
  countTable('#degraded', status.counters.degraded ?? {});
  $('#budget').textContent = `primary budget exhausted ${status.counters.budgetExhausted} times`;
  drawChart();
}

function countTable(selector: string, counts: Record<string, number>): void {
  const rows = Object.entries(counts);
  $(`${selector} tbody`).replaceChildren(
    ...(rows.length
      ? rows.map(([k, n]) => el('tr', {}, el('td', {}, k), el('td', { class: 'num' }, String(n))))
      : [el('tr', {}, el('td', {}, 'none yet'))]),
  );
}

/** The node's row, made at its first poll. */
function nodeRow(name: string, role: 'primary' | 'replica'): NodeRow {
  let entry = nodeRows.get(name);
  if (!entry) {
    const live = [
      el('td', { class: 'num' }),
      el('td', { class: 'num lag' }),
      el('td', { class: 'num probe' }),
      el('td'),
      el('td'),
    ];
    const lab = el('td');
    const attrs: Record<string, string> = role === 'replica' ? { 'data-replica': name } : {};
    const row = el('tr', attrs, el('td', {}, name), el('td', {}, role), ...live, lab);
    entry = { row, live, lab };
    nodeRows.set(name, entry);
  }
  return entry;
}

function refreshRow(entry: NodeRow, values: (Node | string)[]): HTMLElement {
  entry.live.forEach((cell, i) => {
    const value = values[i]!;
    if (typeof value !== 'string' || cell.textContent !== value) cell.replaceChildren(value);
  });
  return entry.row;
}

/** Makes a replica's lab controls on first use; then only its state and delay change. */
function refreshLab(entry: NodeRow, name: string, state: LabState | undefined): void {
  let controls = entry.controls;
  if (!controls) {
    const input = el('input', {
      type: 'number',
      min: '0',
      step: '100',
      value: '0',
      'data-replica': name,
      'aria-label': `apply delay of ${name} in ms`,
    }) as HTMLInputElement;
    const made: LabControls = { input, edited: false, state: labStateBadge(undefined) };
    input.addEventListener('input', () => {
      made.edited = true;
    });
    entry.lab.append(
      labButton('pause', name, () => labCall(name, 'pause')),
      ' ',
      labButton('resume', name, () => labCall(name, 'resume')),
      ' ',
      input,
      ' ',
      labButton('delay', name, async () => {
        await labCall(name, 'delay', { ms: Number(input.value) });
        made.edited = false;
      }),
      ' ',
      made.state,
    );
    entry.controls = made;
    controls = made;
  }
  if (state && !controls.edited && document.activeElement !== controls.input) {
    controls.input.value = String(state.delayMs);
  }
  const badge = labStateBadge(state);
  controls.state.replaceWith(badge);
  controls.state = badge;
}

/** What the replica says about its replay: paused, delayed, or neither. */
function labStateBadge(state: LabState | undefined): HTMLElement {
  if (!state) return el('span', { class: 'lab-state' }, '');
  const parts = [state.replay === 'running' ? 'replaying' : state.replay];
  if (state.delayMs > 0) parts.push(`delay ${state.delayMs} ms`);
  return el(
    'span',
    {
      class: `lab-state ${state.replay === 'running' ? '' : 'paused'}`,
      'data-replay': state.replay,
      'data-delay-ms': String(state.delayMs),
    },
    parts.join(' · '),
  );
}

function labButton(label: string, replica: string, action: () => Promise<void>): HTMLElement {
  const button = el(
    'button',
    { class: 'secondary', 'data-action': label, 'data-replica': replica },
    label,
  ) as HTMLButtonElement;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

async function labCall(name: string, action: string, body?: unknown): Promise<void> {
  await fetch(`/api/lab/replicas/${encodeURIComponent(name)}/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  await poll();
}

function drawChart(): void {
  const canvas = $<HTMLCanvasElement>('#chart');
  const ctx = canvas.getContext('2d');
  if (!ctx || !history) return;
  const { width, height } = canvas;
  const { now, windowMs } = history;
  const series = Object.entries(history.replicas);
  const left = 40;
  const xOf = (t: number) => left + ((width - left) * (t - (now - windowMs))) / windowMs;
  ctx.clearRect(0, 0, width, height);
  let max = 1_000;
  for (const [, points] of series)
    for (const p of points) if (p.lagMs !== null) max = Math.max(max, p.lagMs);
  max = Math.ceil(max / 1_000) * 1_000;
  // Paused and down periods first, as bands behind the lines: one strip per replica.
  const strip = (height - 30) / Math.max(1, series.length);
  ctx.font = '12px system-ui';
  series.forEach(([name, points], i) => {
    let previous: string | null = null;
    for (let k = 0; k < points.length - 1; k++) {
      const p = points[k]!;
      const band =
        p.health === 'down'
          ? 'rgba(248, 81, 73, 0.25)'
          : p.paused
            ? 'rgba(210, 153, 34, 0.22)'
            : null;
      if (band) {
        ctx.fillStyle = band;
        const x = xOf(p.t);
        ctx.fillRect(x, 10 + i * strip, Math.max(1, xOf(points[k + 1]!.t) - x), strip);
        if (band !== previous) {
          // Strips are per replica: name it where its band starts.
          ctx.fillStyle = '#c9d1d9';
          ctx.fillText(`${name} ${p.health === 'down' ? 'down' : 'paused'}`, x + 3, 24 + i * strip);
        }
      }
      previous = band;
    }
  });
  ctx.strokeStyle = '#2a333d';
  ctx.fillStyle = '#8b98a5';
  ctx.font = '12px system-ui';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = height - 20 - ((height - 30) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(width, y);
    ctx.stroke();
    ctx.fillText(`${((max * i) / 4 / 1000).toFixed(1)} s`, 2, y + 4);
  }
  ctx.fillText(`−${Math.round(windowMs / 60_000)} min`, left, height - 4);
  ctx.fillText('now', width - 28, height - 4);
  const legend = $('#legend');
  legend.replaceChildren();
  const drawn: Record<
    string,
    { points: number; nonZero: number; oldestNonZeroAgoMs: number | null }
  > = {};
  series.forEach(([name, points], i) => {
    const color = COLORS[i % COLORS.length]!;
    legend.append(el('span', {}, el('i', { style: `background:${color}` }), name));
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    const summary = { points: 0, nonZero: 0, oldestNonZeroAgoMs: null as number | null };
    for (const p of points) {
      if (p.lagMs === null) {
        drawing = false;
        continue;
      }
      const x = xOf(p.t);
      const y = height - 20 - ((height - 30) * Math.min(p.lagMs, max)) / max;
      if (drawing) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      drawing = true;
      summary.points++;
      if (p.lagMs > 0) {
        summary.nonZero++;
        summary.oldestNonZeroAgoMs ??= now - p.t;
      }
    }
    ctx.stroke();
    drawn[name] = summary;
  });
  legend.append(
    el('span', {}, el('i', { class: 'band paused' }), 'replay paused'),
    el('span', {}, el('i', { class: 'band down' }), 'down'),
  );
  // What was drawn, for tests and for anyone inspecting the page.
  canvas.dataset.drawn = JSON.stringify(drawn);
}

function tokenLsn(token: string | null): string | null {
  try {
    const payload = JSON.parse(atob(token!.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.lsn === 'string' ? payload.lsn : null;
  } catch {
    return null;
  }
}

/** Why a read went where it went, from the route header and the replicas' last known positions. */
function explain(
  write: boolean,
  route: string | null,
  lag: string | null,
  needed: string | null,
): string {
  if (write)
    return `writes always go to the primary; the response carries your token (${needed ?? 'none'})`;
  const required = lsnValue(needed);
  const positions = (last?.replicas ?? [])
    .map(
      (r) => `${r.name} at ${r.replayLsn ?? '?'}${r.health !== 'healthy' ? ` (${r.health})` : ''}`,
    )
    .join(', ');
  if (route?.startsWith('replica:')) {
    const name = route.slice('replica:'.length);
    const replica = last?.replicas.find((r) => r.name === name);
    const at = lsnValue(replica?.replayLsn);
    const why =
      required !== null && at !== null
        ? `it had replayed your write (${needed})`
        : 'it was healthy';
    return `${name} served it: ${why}${lag ? `, lag ${lag} ms` : ''}`;
  }
  if (route === 'primary') {
    return required !== null
      ? `the primary served it: no replica had replayed your write ${needed} yet (${positions})`
      : `the primary served it (${positions})`;
  }
  return 'not routed';
}

async function step(
  list: HTMLElement,
  label: string,
  url: string,
  init: RequestInit = {},
): Promise<Response> {
  const user = $<HTMLInputElement>('#user').value;
  const response = await freshFetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', 'x-user': user, ...(init.headers ?? {}) },
  });
  const route = response.headers.get('x-freshness-route');
  const lag = response.headers.get('x-freshness-lag-ms');
  const routeClass = route?.startsWith('replica:') ? 'route-replica' : 'route-primary';
  list.append(
    el(
      'li',
      { 'data-step': label, 'data-route': route ?? '' },
      `${label}: ${response.status} · `,
      el('code', { class: routeClass }, route ?? 'no route'),
      ` — ${explain((init.method ?? 'GET') !== 'GET', route, lag, tokenLsn(freshFetch.token))}`,
    ),
  );
  return response;
}

$('#journey').addEventListener('submit', async (event) => {
  event.preventDefault();
  const list = $('#steps');
  list.replaceChildren();
  const user = $<HTMLInputElement>('#user').value;
  const created = await step(list, 'create', '/api/cases', {
    method: 'POST',
    body: JSON.stringify({ title: $<HTMLInputElement>('#title').value }),
  });
  if (!created.ok) return;
  const { id } = (await created.json()) as { id: number };
  await step(list, 'read the case', `/api/cases/${id}`);
  await step(list, 'list my cases', `/api/cases?owner=${encodeURIComponent(user)}`);
  await step(list, 'dashboard counts', '/api/dashboard');
  list.setAttribute('data-done', 'true');
});

await poll();
setInterval(poll, 500);
