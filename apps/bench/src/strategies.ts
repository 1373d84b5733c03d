import type { Contract } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import type { CountedPool } from './counted-pool.js';

/** The strategies section 2 compares, in report order. */
export const STRATEGY_NAMES = [
  'all-primary',
  'naive-split',
  'time-pin-2s',
  'freshgate-token',
  'freshgate-2-instances',
  'freshgate-pin',
  'freshgate-wait',
  'freshgate-predicted',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export const STRATEGY_LABELS: Record<StrategyName, string> = {
  'all-primary': 'all reads on the primary',
  'naive-split': 'naive split (reads → replica, writes → primary)',
  'time-pin-2s': 'time pin 2 s (Rails DatabaseSelector)',
  'freshgate-token': 'freshgate, tokens',
  'freshgate-2-instances': 'freshgate, tokens, two instances behind a round-robin balancer',
  'freshgate-pin': 'freshgate, Redis pins only',
  'freshgate-wait': 'freshgate, tokens, { wait: 50 } then primary',
  'freshgate-predicted': 'freshgate, tokens, engine waitAllowance 300 ms (no wait chain)',
};

/** One client session of the journey workload: what its client keeps between requests. */
export interface Session {
  /** Session key (cookie) for the pin store and the history checker. */
  key: string;
  /** The newest freshness token the client received (token strategies only). */
  token: string | undefined;
  /** When the session's last write was acknowledged (time pin), `performance.now()` ms. */
  lastWriteAt: number;
}

/** What a read is for: the session's own records (read-your-writes) or others' (a feed). */
export type ReadKind = 'own' | 'other';

export interface Routed {
  rows: Record<string, unknown>[];
  /** `primary` or `replica:<name>`. */
  route: string;
}

/** A router: where each statement of a session goes. One request per call. */
export interface Strategy {
  name: StrategyName;
  read(session: Session, kind: ReadKind, sql: string, values: unknown[]): Promise<Routed>;
  write(session: Session, sql: string, values: unknown[]): Promise<Routed>;
}

/** The pools every strategy shares, so that statement counts compare like with like. */
export interface Nodes {
  primary: CountedPool;
  replicas: CountedPool[];
}

const TIME_PIN_MS = 2_000;

function roundRobin(nodes: Nodes) {
  let next = 0;
  return () => nodes.replicas[next++ % nodes.replicas.length] as CountedPool;
}

async function run(node: CountedPool, sql: string, values: unknown[], route: string) {
  const { rows } = await node.pool.query(sql, values);
  return { rows, route };
}

/**
 * Builds a strategy over the shared pools. The freshgate strategies drive the engine the way
 * the Express and Fastify adapters do (one `begin()` per request), without HTTP, so that the
 * comparison is about routing alone: own records are read under `read-your-writes`, other
 * sessions' records (a feed the user pages through) under `monotonic`. With several
 * freshgate instances in `gates`, a session's requests go to each in turn.
 */
export function createStrategy(
  name: StrategyName,
  nodes: Nodes,
  gates: readonly Freshgate[],
): Strategy {
  const replica = roundRobin(nodes);
  const write = async (session: Session, sql: string, values: unknown[]) => {
    const result = await run(nodes.primary, sql, values, 'primary');
    session.lastWriteAt = performance.now();
    return result;
  };
  switch (name) {
    case 'all-primary':
      return {
        name,
        read: (_s, _k, sql, values) => run(nodes.primary, sql, values, 'primary'),
        write,
      };
    case 'naive-split':
      return {
        name,
        read: (_s, _k, sql, values) => {
          const node = replica();
          return run(node, sql, values, `replica:${node.name}`);
        },
        write,
      };
    case 'time-pin-2s':
      return {
        name,
        read: (session, _k, sql, values) => {
          if (performance.now() - session.lastWriteAt < TIME_PIN_MS) {
            return run(nodes.primary, sql, values, 'primary');
          }
          const node = replica();
          return run(node, sql, values, `replica:${node.name}`);
        },
        write,
      };
    default: {
      const instances = gates.map((fg) => freshgateStrategy(name, fg));
      if (instances.length === 0) throw new Error(`${name}: no freshgate instance`);
      return instances.length === 1 ? (instances[0] as Strategy) : balanced(name, instances);
    }
  }
}

/**
 * App instances behind a balancer without stickiness: each request of a session goes to the
 * next instance, so consecutive requests alternate and the token a client sends back was, as a
 * rule, issued by another instance (whose monitor sampled the primary at other moments).
 */
function balanced(name: StrategyName, instances: readonly Strategy[]): Strategy {
  const next = new WeakMap<Session, number>();
  let arrivals = 0;
  const pick = (session: Session) => {
    // A session's first request goes wherever the balancer's turn is, so sessions spread.
    const turn = next.get(session) ?? arrivals++;
    next.set(session, turn + 1);
    return instances[turn % instances.length] as Strategy;
  };
  return {
    name,
    read: (session, kind, sql, values) => pick(session).read(session, kind, sql, values),
    write: (session, sql, values) => pick(session).write(session, sql, values),
  };
}

function freshgateStrategy(name: StrategyName, fg: Freshgate): Strategy {
  const usePins = name === 'freshgate-pin';
  const fallback = name === 'freshgate-wait' ? [{ wait: 50 }, 'primary' as const] : undefined;
  // Contracts are validated once, as a route declaration would be.
  const contracts: Record<ReadKind | 'write', Contract> = {
    own: fg.engine.contract(
      fallback ? { contract: 'read-your-writes', fallback } : 'read-your-writes',
    ),
    other: fg.engine.contract(fallback ? { contract: 'monotonic', fallback } : 'monotonic'),
    write: fg.engine.contract('read-your-writes'),
  };
  const request = async (
    session: Session,
    contract: Contract,
    sql: string,
    values: unknown[],
  ): Promise<Routed> => {
    const { db, freshness } = await fg.begin({
      contract,
      token: usePins ? undefined : session.token,
      sessionKey: usePins ? session.key : undefined,
    });
    const { rows } = await db.query(sql, values);
    // Pin-only clients do not carry tokens back (a client without cookie or header support).
    if (!usePins && freshness.token) session.token = freshness.token;
    return { rows: rows as Record<string, unknown>[], route: freshness.servedBy ?? 'unknown' };
  };
  return {
    name,
    read: (session, kind, sql, values) => request(session, contracts[kind], sql, values),
    write: async (session, sql, values) => {
      const result = await request(session, contracts.write, sql, values);
      session.lastWriteAt = performance.now();
      return result;
    },
  };
}
