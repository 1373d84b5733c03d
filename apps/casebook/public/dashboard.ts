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
    fallbacks: Record<string, number>;
    degraded: Record<string, number>;
    budgetExhausted: number;
  };
  lab: boolean;
  framework: string;
  pinStore: string;
}

const freshFetch = createFreshFetch();
const HISTORY_MS = 180_000;
const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#bc8cff', '#f778ba'];
const history = new Map<string, { t: number; lag: number | null }[]>();
let last: Status | undefined;

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
    const response = await fetch('/api/freshgate/status');
    last = (await response.json()) as Status;
    const now = Date.now();
    for (const r of last.replicas) {
      const points = history.get(r.name) ?? [];
      points.push({ t: now, lag: r.health === 'down' ? null : (r.lagMs ?? null) });
      while (points.length > 0 && points[0]!.t < now - HISTORY_MS) points.shift();
      history.set(r.name, points);
    }
    render(last);
  } catch {
    $('#cluster').textContent = 'status unavailable — is the server running?';
  }
}

function render(status: Status): void {
  $('#cluster').textContent =
    `${status.framework} · pin store: ${status.pinStore} · primary ${status.primary.currentLsn ?? '?'} · lab mode ${status.lab ? 'on' : 'off'}`;
  const body = $('#nodes tbody');
  body.replaceChildren(
    el(
      'tr',
      {},
      el('td', {}, status.primary.name),
      el('td', {}, 'primary'),
      el('td', { class: 'num' }, status.primary.currentLsn ?? '—'),
      el('td', {}, '—'),
      el('td', {}, badge(status.primary.health)),
      el('td', {}, badge(status.primary.circuit)),
      el('td', {}, ''),
    ),
    ...status.replicas.map((r) => {
      const lab = el('td');
      if (status.lab) {
        const delay = el('input', {
          type: 'number',
          min: '0',
          step: '100',
          value: '0',
          'aria-label': `apply delay of ${r.name} in ms`,
        }) as HTMLInputElement;
        lab.append(
          labButton('pause', r.name, () => labCall(r.name, 'pause')),
          ' ',
          labButton('resume', r.name, () => labCall(r.name, 'resume')),
          ' ',
          delay,
          ' ',
          labButton('delay', r.name, () => labCall(r.name, 'delay', { ms: Number(delay.value) })),
        );
      }
      return el(
        'tr',
        { 'data-replica': r.name },
        el('td', {}, r.name),
        el('td', {}, 'replica'),
        el('td', { class: 'num' }, r.replayLsn ?? '—'),
        el('td', { class: 'num lag' }, r.lagMs == null ? '—' : `${r.lagMs} ms`),
        el('td', {}, badge(r.health)),
        el('td', {}, badge(r.circuit)),
        lab,
      );
    }),
  );
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
  if (!ctx) return;
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const now = Date.now();
  let max = 1_000;
  for (const points of history.values())
    for (const p of points) if (p.lag !== null) max = Math.max(max, p.lag);
  max = Math.ceil(max / 1_000) * 1_000;
  ctx.strokeStyle = '#2a333d';
  ctx.fillStyle = '#8b98a5';
  ctx.font = '12px system-ui';
  for (let i = 0; i <= 4; i++) {
    const y = height - 20 - ((height - 30) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(40, y);
    ctx.lineTo(width, y);
    ctx.stroke();
    ctx.fillText(`${((max * i) / 4 / 1000).toFixed(1)} s`, 2, y + 4);
  }
  ctx.fillText('−3 min', 40, height - 4);
  ctx.fillText('now', width - 28, height - 4);
  const legend = $('#legend');
  legend.replaceChildren();
  [...history.entries()].forEach(([name, points], i) => {
    const color = COLORS[i % COLORS.length]!;
    legend.append(el('span', {}, el('i', { style: `background:${color}` }), name));
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    for (const p of points) {
      if (p.lag === null) {
        drawing = false;
        continue;
      }
      const x = 40 + ((width - 40) * (p.t - (now - HISTORY_MS))) / HISTORY_MS;
      const y = height - 20 - ((height - 30) * Math.min(p.lag, max)) / max;
      if (drawing) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      drawing = true;
    }
    ctx.stroke();
  });
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
