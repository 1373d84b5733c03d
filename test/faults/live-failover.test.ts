import { memoryPinStore, parseLsn } from '@freshgate/core';
import type { Freshgate, FreshgateOptions } from '@freshgate/pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Cluster,
  type FailoverTimes,
  HistoryChecker,
  startCluster,
  switchover,
  TcpProxy,
  unplannedFailover,
  waitFor,
} from '../harness/index.js';
import { freshgateFor } from '../integration/support.js';
import { type App, call, isDocumented503, SCHEMA, sleep, startApps } from './support.js';

// The application keeps running through the failover: one freshgate, whose primary is a stable
// address (a TCP proxy standing in for a virtual IP or DNS name) that moves to the promoted
// replica. The monitor's breaker keeps its defaults (back-off up to 5 s): recovery must not
// wait for it.
const MONITOR: FreshgateOptions['monitor'] = {
  interval: 50,
  quarantine: 300,
  // Lag storms keep replicas healthy-but-behind: only LSN requirements stand between a
  // session and a stale read, so a dropped token or pin shows as a violation.
  health: { exitLag: 60_000, enterLag: 30_000, enterFor: 0 },
};

/** The LSN a freshness token names (its payload is readable; only its signature is secret). */
function tokenLsn(token: string): bigint {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
  return parseLsn(payload.lsn);
}

/**
 * A violating session's exchanges for the report: those of the second before the violating read
 * (`route` ends `at <ms> ms`) and the half second after it, then the last ten.
 */
function violationLog(log: readonly string[], route: string): string {
  const at = Number(/at (\d+) ms$/.exec(route)?.[1] ?? Number.NaN);
  const around = log.filter((line) => {
    const start = Number(/^(\d+)–/.exec(line)?.[1] ?? Number.NaN);
    return start >= at - 1_000 && start <= at + 500;
  });
  return [...around, '…', ...log.slice(-10)].join('\n');
}

/** How a load session carries what it has observed. */
type Carry = 'token' | 'cookie' | 'session';
const CARRIES: readonly Carry[] = ['token', 'cookie', 'session'];

interface Failure {
  at: number;
  status: number | 'error';
  documented: boolean;
  what: string;
}

/**
 * Sessions of every kind (a token in the header, the token in the `fg_fresh` cookie, a
 * session key only) writing their own keys and reading them back through both apps, with
 * every acknowledged write and every read recorded in the black-box history checker.
 */
function mixedLoad(apps: App[], sessions: number, thinkMs: number) {
  const history = new HistoryChecker();
  const failures: Failure[] = [];
  const writes: { at: number; session: string; key: string; version: number }[] = [];
  const reads: { at: number; key: string; version: number }[] = [];
  // Every exchange of every session, for the report of a violation.
  const logs = new Map<string, string[]>();
  let requests = 0;
  let running = true;
  const loadStartedAt = performance.now();
  const run = Array.from({ length: sessions }, async (_, i) => {
    const app = apps[i % apps.length]!;
    const carry = CARRIES[i % CARRIES.length]!;
    const session = `${app.framework}-${carry}-${i}-${Math.random().toString(36).slice(2, 8)}`;
    const keys = [`${session}:a`, `${session}:b`];
    let token: string | undefined;
    let cookie: string | undefined;
    const log: string[] = [];
    logs.set(session, log);
    while (running) {
      const key = keys[Math.floor(Math.random() * keys.length)]!;
      const write = Math.random() < 0.3;
      const path = write || Math.random() < 0.5 ? `/items/${key}` : `/feed/items/${key}`;
      const headers: Record<string, string> = {};
      if (carry === 'token' && token) headers['x-freshness-token'] = token;
      if (carry === 'cookie' && cookie) headers.cookie = cookie;
      if (carry === 'session') headers['x-user'] = session;
      const start = performance.now();
      requests++;
      try {
        const exchange = await call(`${app.url}${path}`, {
          method: write ? 'POST' : 'GET',
          headers,
          deadlineMs: 8_000,
        });
        const end = performance.now();
        token = exchange.headers.get('x-freshness-token') ?? token;
        const setCookie = exchange.headers.get('set-cookie');
        const fresh = setCookie?.match(/(?:^|,\s*)((?:__Host-)?fg_fresh=[^;]*)/)?.[1];
        if (fresh) cookie = fresh;
        const served = exchange.headers.get('x-freshness-route') ?? undefined;
        log.push(
          `${(start - loadStartedAt).toFixed(0)}–${(end - loadStartedAt).toFixed(0)} ms ${write ? 'POST' : 'GET'} ${path} ${exchange.status} ${JSON.stringify(exchange.body).slice(0, 80)} ${served} sent ${JSON.stringify(headers).slice(0, 200)} got ${exchange.headers.get('x-freshness-token')?.split('.')[1] ?? ''}`,
        );
        if (write && exchange.status === 201) {
          const { version } = exchange.body as { version: number };
          history.write(session, key, version, end);
          writes.push({ at: end, session, key, version });
        } else if (!write && exchange.status === 200) {
          const { version } = exchange.body as { version: number };
          // What the client sent, in the report of a violation: the token's position and cluster.
          const sent = headers['x-freshness-token'] ?? headers.cookie?.split('=')[1];
          const claims = sent
            ? JSON.parse(Buffer.from(sent.split('.')[1] ?? '', 'base64url').toString('utf8'))
            : null;
          history.read(
            session,
            key,
            version,
            start,
            end,
            `${served} sent ${claims ? `${claims.lsn}@${claims.cid}` : 'nothing'} at ${(start - loadStartedAt).toFixed(0)} ms`,
            // `/items` is read-your-writes: what it read is not carried forward (no token), so
            // a version of a write whose outcome the session never learnt (a 503 after the
            // commit, while the primary went away) may be seen once and not again.
            { raises: path.startsWith('/feed/') },
          );
          reads.push({ at: end, key, version });
        } else {
          failures.push({
            at: end,
            status: exchange.status,
            documented: isDocumented503(exchange),
            what: `${exchange.status} ${write ? 'POST' : 'GET'} ${JSON.stringify(exchange.body).slice(0, 160)}`,
          });
        }
      } catch (error) {
        failures.push({
          at: performance.now(),
          status: 'error',
          documented: false,
          what: `request failed: ${(error as Error).message}`,
        });
      }
      await sleep(thinkMs * (0.5 + Math.random()));
    }
  });
  return {
    startedAt: loadStartedAt,
    history,
    logs,
    failures,
    writes,
    reads,
    get requests() {
      return requests;
    },
    async stop() {
      running = false;
      await Promise.all(run);
    },
  };
}

/** Replica lag storms: `recovery_min_apply_delay` switching between 0 and up to 400 ms. */
function lagStorms(cluster: Cluster, name: string) {
  let running = true;
  const loop = (async () => {
    while (running) {
      await cluster
        .replica(name)
        .setApplyDelay(Math.random() < 0.5 ? 0 : 100 + Math.floor(Math.random() * 300))
        .catch(() => {});
      await sleep(400 + Math.random() * 400);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

describe('live failover: the same process keeps serving while the primary address moves', () => {
  let cluster: Cluster | undefined;
  let proxy: TcpProxy | undefined;
  let freshgate: Freshgate | undefined;
  let apps: App[] = [];

  async function setUp() {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    proxy = await TcpProxy.start({ host: cluster.primary.host, port: cluster.primary.port });
    const url = new URL(cluster.primary.url);
    url.port = String(proxy.port);
    freshgate = await freshgateFor(cluster, {
      primary: url.toString(),
      cookie: true,
      pinStore: memoryPinStore(),
      monitor: MONITOR,
    });
    await waitFor('replicas healthy', async () =>
      freshgate!.topology.replicas.every((r) => r.health === 'healthy') ? true : undefined,
    );
    apps = await startApps(freshgate);
    return { cluster, proxy, freshgate, apps };
  }

  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    apps = [];
    await freshgate?.close();
    await proxy?.close();
    await cluster?.stop();
    freshgate = undefined;
    proxy = undefined;
    cluster = undefined;
  });

  /** Failures after `times.promotedAt`, the first write acknowledged after it, and a summary. */
  function afterPromotion(load: ReturnType<typeof mixedLoad>, times: FailoverTimes) {
    const late = load.failures.filter((f) => f.at > times.promotedAt + 3_000);
    const firstWrite = load.writes.find((w) => w.at > times.promotedAt);
    return {
      late,
      writesBackMs:
        firstWrite === undefined ? Number.POSITIVE_INFINITY : firstWrite.at - times.promotedAt,
      lastFailureMs: Math.max(0, ...load.failures.map((f) => f.at - times.promotedAt)),
    };
  }

  it('planned switchover under load with lag storms: 0 stale reads, only 503s, writes back within 2 s, and a pre-failover token is honoured on the new timeline', async () => {
    const { cluster, proxy, freshgate, apps } = await setUp();
    const stopStorms = lagStorms(cluster, 'r2');
    const load = mixedLoad(apps, 30, 25);
    const startedAt = performance.now();
    await sleep(3_000);
    await stopStorms();

    // r2 will lag far behind on the new timeline: a client that wrote just before the
    // switchover must still see its write there.
    await cluster.replica('r2').setApplyDelay(8_000);
    const witnesses = await Promise.all(
      apps.map(async (app) => {
        const exchange = await call(`${app.url}/items/witness-${app.framework}`, {
          method: 'POST',
        });
        expect(exchange.status).toBe(201);
        return { app, token: exchange.headers.get('x-freshness-token')! };
      }),
    );
    const parentCid = freshgate.topology.primary.clusterId;
    const changes: string[] = [];
    freshgate.topology.on((event) => {
      const r2 = freshgate.topology.replica('r2');
      changes.push(
        `${(performance.now() - load.startedAt).toFixed(0)} ms ${JSON.stringify(event)} r2 ${r2?.replayLsn?.toString(16)} ${r2?.clusterId} ${r2?.health}`,
      );
    });

    const times = await switchover(cluster, 'r1', proxy);
    // r2 follows the new timeline (and is trusted on it again) while still far behind.
    await waitFor(
      'r2 healthy on the new timeline',
      async () => {
        const r2 = freshgate.topology.replica('r2')!;
        return r2.clusterId === freshgate.topology.primary.clusterId &&
          r2.clusterId !== parentCid &&
          r2.health === 'healthy'
          ? true
          : undefined;
      },
      { timeoutMs: 10_000 },
    );
    for (const { app, token } of witnesses) {
      const read = await call(`${app.url}/items/witness-${app.framework}`, {
        headers: { 'x-freshness-token': token },
      });
      expect(read.status, `${app.framework} witness read`).toBe(200);
      expect(read.body, `${app.framework}: the pre-failover write is visible`).toEqual({
        version: 1,
      });
      expect(read.headers.get('x-freshness-route')).not.toBe('replica:r2');
    }
    // The precondition that makes the check above meaningful: r2 was trusted on the new
    // timeline but had not replayed the writes.
    const r2 = freshgate.topology.replica('r2')!;
    expect(r2.health).toBe('healthy');
    for (const { token } of witnesses) expect(r2.replayLsn! < tokenLsn(token)).toBe(true);
    await cluster.replica('r2').setApplyDelay(0);

    // Two thirds of the run after the switchover.
    const switchedAt = times.promotedAt - startedAt;
    // (At least 4 s, at most 8 s: a slow machine stretches the switchover, not the bound.)
    const after = Math.min(8_000, Math.max(4_000, 2 * switchedAt));
    await sleep(Math.max(0, after - (performance.now() - times.promotedAt)));
    await load.stop();
    const seconds = (performance.now() - startedAt) / 1_000;

    const report = load.history.report();
    const summary = afterPromotion(load, times);
    const undocumented = load.failures.filter((f) => !f.documented);
    console.info(
      `planned switchover: ${load.requests} requests in ${seconds.toFixed(1)} s (${Math.round(load.requests / seconds)} req/s), ${load.failures.length} failed (all documented 503: ${undocumented.length === 0}), writes back ${summary.writesBackMs.toFixed(0)} ms after promotion, last failure ${summary.lastFailureMs.toFixed(0)} ms after promotion; timeline lineage ${JSON.stringify(freshgate.topology.lineage, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`,
    );
    if (report.examples.length > 0)
      console.info(
        `switchover at ${(times.stoppedAt - load.startedAt).toFixed(0)}–${(times.promotedAt - load.startedAt).toFixed(0)} ms; topology:\n${changes.join('\n')}\n${report.examples
          .map(
            (e) => `${e.session}:\n${violationLog(load.logs.get(e.session) ?? [], e.route ?? '')}`,
          )
          .join('\n')}`,
      );
    expect(undocumented.map((f) => f.what).slice(0, 5)).toEqual([]);
    expect(report.reads).toBeGreaterThan(100);
    expect(report.examples).toEqual([]);
    expect(report.readYourWritesViolations + report.monotonicViolations).toBe(0);
    expect(summary.writesBackMs).toBeLessThanOrEqual(2_000);
    expect(summary.late.map((f) => f.what).slice(0, 5)).toEqual([]);
    // The switchover moved the cluster to a new timeline whose history was read.
    expect(freshgate.topology.primary.clusterId).not.toBe(parentCid);
    expect(freshgate.topology.lineage?.ancestors?.length).toBeGreaterThan(0);
    expect(freshgate.monitor.quarantineReason('r1')).toBe('promoted');
  }, 120_000);

  it('unplanned failover under load: acknowledged writes the promoted node never received are reported as data loss, not as routing errors; still only 503s and writes back within 2 s', async () => {
    const { cluster, proxy, freshgate, apps } = await setUp();
    const stopStorms = lagStorms(cluster, 'r2');
    const load = mixedLoad(apps, 30, 25);
    const startedAt = performance.now();
    await sleep(3_000);
    // r1 stops receiving WAL shortly before the primary dies: the writes acknowledged
    // meanwhile (asynchronous replication) exist nowhere else and are lost with it.
    await cluster.replica('r1').query("ALTER SYSTEM SET primary_conninfo = ''");
    await cluster.replica('r1').query('SELECT pg_reload_conf()');
    await sleep(500);
    let newTimelineAt: number | undefined;
    const parentCid = freshgate.topology.primary.clusterId;
    freshgate.topology.on((event) => {
      if (event.type === 'cluster' && event.node === 'primary' && event.from === parentCid)
        newTimelineAt ??= performance.now();
    });
    const times = await unplannedFailover(cluster, 'r1', proxy);
    await sleep(Math.min(8_000, Math.max(4_000, 2 * (times.promotedAt - startedAt))));
    await load.stop();
    await stopStorms();

    // What survived: each key's version on the new primary. An acknowledged version above
    // it was lost with the old primary's unsent WAL.
    const rows = await cluster.primary.query<{ key: string; version: number }>(
      'SELECT key, version FROM items',
    );
    const survived = new Map(rows.map((r) => [r.key, r.version]));
    // Until freshgate knew the new timeline, everything clients observed came from the old
    // one: the promoted node serves no statement before its identity is confirmed.
    const cutoff = Math.max(times.promotedAt, newTimelineAt ?? Number.POSITIVE_INFINITY);
    const observed = new Map<string, number>();
    for (const o of [...load.writes, ...load.reads]) {
      if (o.at < cutoff) observed.set(o.key, Math.max(observed.get(o.key) ?? 0, o.version));
    }
    const lost = new Set<string>();
    for (const [key, version] of observed) {
      if (version > (survived.get(key) ?? 0)) lost.add(key);
    }
    // A key written again after the failover restarts from what survived: its first new
    // version not above the one observed before shows the loss even when later writes passed it.
    for (const w of load.writes) {
      if (w.at > cutoff && w.version <= (observed.get(w.key) ?? 0)) lost.add(w.key);
    }
    const report = load.history.report(1_000_000);
    const routingErrors = report.examples.filter((v) => !lost.has(v.key));
    if (routingErrors.length > 0) console.info(JSON.stringify(routingErrors.slice(0, 5)));
    const undocumented = load.failures.filter((f) => !f.documented);
    const summary = afterPromotion(load, times);
    console.info(
      `unplanned failover: ${load.requests} requests, ${load.failures.length} failed, data loss: ${lost.size} keys whose acknowledged or observed versions were lost, ${report.examples.length - routingErrors.length} reads that saw the loss, ${routingErrors.length} routing errors; writes back ${summary.writesBackMs.toFixed(0)} ms after promotion; r2 ${freshgate.topology.replica('r2')?.health} (${freshgate.monitor.quarantineReason('r2') ?? 'not quarantined'})`,
    );
    expect(newTimelineAt).toBeDefined();
    expect(undocumented.map((f) => f.what).slice(0, 5)).toEqual([]);
    expect(routingErrors.slice(0, 5)).toEqual([]);
    // The loss was provoked: the test must see it, as loss.
    expect(lost.size).toBeGreaterThan(0);
    expect(freshgate.monitor.quarantineReason('r1')).toBe('promoted');
    expect(summary.writesBackMs).toBeLessThanOrEqual(2_000);
    expect(summary.late.map((f) => f.what).slice(0, 5)).toEqual([]);
  }, 120_000);

  it('an address that answers as a standby (a demoted primary, a misrouted VIP): writes and strong reads are 503s, never a write attempt or a stale strong read; back when the address is right', async () => {
    const { cluster, proxy, freshgate, apps } = await setUp();
    for (const app of apps) {
      expect((await call(`${app.url}/items/k-${app.framework}`, { method: 'POST' })).status).toBe(
        201,
      );
    }
    const r2 = cluster.replica('r2');
    proxy.moveTo({ host: r2.host, port: r2.port });
    for (const app of apps) {
      const write = await call(`${app.url}/items/k-${app.framework}`, { method: 'POST' });
      expect(isDocumented503(write), `${app.framework} write: ${write.status}`).toBe(true);
      const strong = await call(`${app.url}/strong/items/k-${app.framework}`);
      expect(isDocumented503(strong), `${app.framework} strong read: ${strong.status}`).toBe(true);
    }
    expect(freshgate.topology.primary.health).toBe('quarantined');
    proxy.moveTo({ host: cluster.primary.host, port: cluster.primary.port });
    for (const app of apps) {
      const write = await call(`${app.url}/items/k-${app.framework}`, { method: 'POST' });
      expect(write.status).toBe(201);
      expect(write.body).toEqual({ version: 2 });
    }
  }, 120_000);
});
