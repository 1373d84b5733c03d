// The small part of node-postgres freshgate uses, typed locally (kysely-style) so that any
// compatible pool works and the user's pg version is not pinned by ours.

/** A query result in node-postgres' shape. */
export interface QueryResultLike<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number | null;
  command?: string;
  fields?: unknown[];
}

/** A checked-out connection (`pg.PoolClient`). */
export interface PoolClientLike {
  query(text: string, values?: unknown[]): Promise<QueryResultLike>;
  query(config: { text: string; values?: unknown[] }): Promise<QueryResultLike>;
  release(destroy?: Error | boolean): void;
  /** `pg.PoolClient` is an EventEmitter: a dead server makes it emit `error`. */
  on?(event: 'error', listener: (error: Error) => void): unknown;
}

/** A connection pool (`pg.Pool`). */
export interface PoolLike {
  connect(): Promise<PoolClientLike>;
  query(text: string, values?: unknown[]): Promise<QueryResultLike>;
  end(): Promise<void>;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  /** node-postgres keeps the constructor options here; the monitor uses them for its own connection. */
  readonly options?: object;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  on?(event: 'connect', listener: (client: PoolClientLike) => void): unknown;
}

/** A single connection (`pg.Client`), used by the monitor. */
export interface ClientLike {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<QueryResultLike>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * node-postgres pool options (`pg.PoolConfig`), passed to `new pg.Pool()` unchanged. Declared
 * here so that freshgate's types do not require `@types/pg`; a `pg.PoolConfig` is assignable.
 */
export interface PoolConfigLike {
  connectionString?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  password?: string | (() => string | Promise<string>) | undefined;
  database?: string | undefined;
  ssl?: boolean | object | undefined;
  application_name?: string | undefined;
  fallback_application_name?: string | undefined;
  options?: string | undefined;
  client_encoding?: string | undefined;
  keepAlive?: boolean | undefined;
  keepAliveInitialDelayMillis?: number | undefined;
  statement_timeout?: false | number | undefined;
  query_timeout?: number | undefined;
  lock_timeout?: number | undefined;
  idle_in_transaction_session_timeout?: number | undefined;
  connectionTimeoutMillis?: number | undefined;
  enableChannelBinding?: boolean | undefined;
  sslnegotiation?: 'postgres' | 'direct' | undefined;
  pipeline?: boolean | undefined;
  max?: number | undefined;
  min?: number | undefined;
  idleTimeoutMillis?: number | undefined | null;
  allowExitOnIdle?: boolean | undefined;
  maxUses?: number | undefined;
  maxLifetimeSeconds?: number | undefined;
  /** Driver objects (`types`, `stream`, `Client`, `Promise`, `log`, hooks) as node-postgres takes them. */
  types?: unknown;
  stream?: unknown;
  log?: unknown;
  Promise?: unknown;
  Client?: unknown;
  onConnect?: unknown;
  verify?: unknown;
}
