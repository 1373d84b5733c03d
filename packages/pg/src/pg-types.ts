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
}

/** A single connection (`pg.Client`), used by the monitor. */
export interface ClientLike {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<QueryResultLike>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
