import { HistoryChecker, type Violation } from '@freshgate/harness';
import { sleep, summarize } from './stats.js';
import type { Nodes, ReadKind, Session, Strategy } from './strategies.js';

/** Parameters of one cell of the journey workload. */
export interface JourneySettings {
  sessions: number;
  durationMs: number;
  /** A session waits a uniformly random 0…thinkMs before its next request… */
  thinkMs: number;
  /** …but only 0…afterWriteMs after a write (the redirect or refresh that shows the result). */
  afterWriteMs: number;
  /** Probability that a request is a write (create or update). */
  writeFraction: number;
}

/** What one cell measured. */
export interface JourneyResult {
  operations: number;
  reads: number;
  writes: number;
  errors: number;
  /** Reads served by a replica, 0–1. */
  replicaShare: number;
  readYourWritesViolations: number;
  monotonicViolations: number;
  examples: Violation[];
  primaryStatements: number;
  replicaStatements: number;
  /**
   * Statements that read a position other than a write's commit LSN: after a monotonic read
   * (on a replica or the primary) and for barriers. Routing's own round trips.
   */
  positionReads: number;
  /** Of those, on replicas (after a replica read). */
  replicaPositionReads: number;
  primaryStatementsPerSecond: number;
  readP50Ms: number;
  readP99Ms: number;
  operationsPerSecond: number;
  seconds: number;
}

const OWN_SQL = 'SELECT version FROM journey_items WHERE id = $1';
const LIST_SQL =
  'SELECT id, version FROM journey_items WHERE owner = $1 AND id = ANY($2::int[]) ORDER BY id';
const CREATE_SQL = "INSERT INTO journey_items (id, owner, version, body) VALUES ($1, $2, 1, 'x')";
const UPDATE_SQL = 'UPDATE journey_items SET version = version + 1 WHERE id = $1 RETURNING version';
/** Records a session lists and picks its updates from. */
const RECENT = 8;
/** Other sessions' records a feed read may pick from. */
const FEED = 2_000;

/** Hands out ids of new records; one per run, shared by every cell. */
export function idAllocator(start = 1): () => number {
  let next = start;
  return () => next++;
}

interface SessionState extends Session {
  owner: number;
  /** The session's newest records, oldest first. */
  items: number[];
  lastWritten: number | undefined;
  step: number;
}

/**
 * Runs the journey workload once: `sessions` concurrent clients, each looping create → read
 * own record → update → read → list, plus reads of other sessions' records, with
 * `writeFraction` of requests being writes and a random think time between requests. Every
 * write and read is recorded in a {@link HistoryChecker} with the client's clock.
 */
export async function runJourney(
  strategy: Strategy,
  nodes: Nodes,
  settings: JourneySettings,
  nextId: () => number,
  /** Distinguishes this cell's sessions from earlier cells' (pins outlive a cell). */
  sessionPrefix = '',
  /** Records each session created on an earlier visit (replicated before the cell), by owner. */
  seeds: (owner: number) => number[] = () => [],
): Promise<JourneyResult> {
  const history = new HistoryChecker();
  const owners = Array.from({ length: settings.sessions }, (_, i) => i);
  const feed: number[] = owners.flatMap((owner) => seeds(owner)).slice(-FEED);
  const readLatencies: number[] = [];
  let reads = 0;
  let writes = 0;
  let errors = 0;
  let replicaReads = 0;
  for (const node of [nodes.primary, ...nodes.replicas]) node.reset();

  const started = performance.now();
  const deadline = started + settings.durationMs;

  const read = async (
    s: SessionState,
    kind: ReadKind,
    ids: number[],
    sql: string,
    values: unknown[],
  ) => {
    const start = performance.now();
    const { rows, route } = await strategy.read(s, kind, sql, values);
    const end = performance.now();
    readLatencies.push(end - start);
    reads++;
    if (route.startsWith('replica')) replicaReads++;
    const versions = new Map(rows.map((r) => [Number(r.id ?? ids[0]), Number(r.version)]));
    for (const id of ids)
      history.read(s.key, `item:${id}`, versions.get(id) ?? 0, start, end, route);
  };

  const step = async (s: SessionState): Promise<boolean> => {
    const isWrite = Math.random() < settings.writeFraction;
    if (isWrite) {
      // The journey: create, then update what was created; lists grow to RECENT records.
      const create = s.items.length === 0 || Math.random() < 0.5;
      if (create) {
        const id = nextId();
        await strategy.write(s, CREATE_SQL, [id, s.owner]);
        history.write(s.key, `item:${id}`, 1, performance.now());
        s.items.push(id);
        if (s.items.length > RECENT) s.items.shift();
        feed.push(id);
        if (feed.length > FEED) feed.shift();
        s.lastWritten = id;
      } else {
        const id = s.items[Math.floor(Math.random() * s.items.length)] as number;
        const { rows } = await strategy.write(s, UPDATE_SQL, [id]);
        history.write(s.key, `item:${id}`, Number(rows[0]?.version), performance.now());
        s.lastWritten = id;
      }
      writes++;
      s.step = 0;
      return true;
    }
    // After a write: read the written record, then the list, then someone else's record.
    const what = s.step++ % 3;
    if (what === 0 && s.lastWritten !== undefined) {
      await read(s, 'own', [s.lastWritten], OWN_SQL, [s.lastWritten]);
    } else if ((what === 1 && s.items.length > 0) || feed.length === 0) {
      await read(s, 'own', [...s.items], LIST_SQL, [s.owner, s.items]);
    } else {
      const id = feed[Math.floor(Math.random() * feed.length)] as number;
      await read(s, 'other', [id], OWN_SQL, [id]);
    }
    return false;
  };

  const loop = async (s: SessionState) => {
    // Sessions start spread over one think time, as arriving users would.
    await sleep(Math.random() * settings.thinkMs);
    while (performance.now() < deadline) {
      let wrote = false;
      try {
        wrote = await step(s);
      } catch {
        errors++;
      }
      await sleep(Math.random() * (wrote ? settings.afterWriteMs : settings.thinkMs));
    }
  };

  // Sessions are in the middle of their visit when the cell starts: their earlier records
  // exist (replicated long ago), and their last write lies an exponentially distributed time
  // back, with the mean gap between writes this write fraction and think time give.
  const meanWriteGap = settings.thinkMs / 2 / Math.max(settings.writeFraction, 1e-6);
  await Promise.all(
    owners.map((owner) => {
      const key = `${sessionPrefix}s${owner}`;
      const items = seeds(owner);
      for (const id of items) history.write(key, `item:${id}`, 1, started - 3_600_000);
      return loop({
        key,
        owner,
        token: undefined,
        lastWriteAt: started + Math.log(1 - Math.random()) * meanWriteGap,
        items: [...items],
        lastWritten: items.at(-1),
        step: 1,
      });
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const report = history.report();
  const latency = summarize(readLatencies);
  const primaryStatements = nodes.primary.statements;
  const replicaPositionReads = nodes.replicas.reduce((sum, n) => sum + n.positionReads, 0);
  return {
    operations: reads + writes,
    reads,
    writes,
    errors,
    replicaShare: reads === 0 ? 0 : replicaReads / reads,
    readYourWritesViolations: report.readYourWritesViolations,
    monotonicViolations: report.monotonicViolations,
    examples: report.examples,
    primaryStatements,
    replicaStatements: nodes.replicas.reduce((sum, n) => sum + n.statements, 0),
    positionReads: Math.max(0, nodes.primary.positionReads - writes) + replicaPositionReads,
    replicaPositionReads,
    primaryStatementsPerSecond: primaryStatements / seconds,
    readP50Ms: latency.p50,
    readP99Ms: latency.p99,
    operationsPerSecond: (reads + writes) / seconds,
    seconds,
  };
}
