import pg from 'pg';

/**
 * Whether a replica connection is still a standby, without a statement of its own.
 *
 * PostgreSQL 14 and later report `in_hot_standby` (a `GUC_REPORT` setting) to the client: `on`
 * at connection start on a standby, and `off` before the `ReadyForQuery` of the first statement
 * that ends after recovery ended (the server checks `RecoveryInProgress()` right before it
 * reports). So a connection known to be a standby that has reported nothing since ran the
 * statement it just answered during recovery, on a prefix of the primary's history; one that
 * reported `off` may have run it on a promoted node. node-postgres emits the reports as
 * `parameterStatus` events of `client.connection`.
 */

const standby = new WeakMap<object, boolean>();

interface ReportingConnection {
  on(
    event: 'parameterStatus',
    listener: (message: { parameterName: string; parameterValue: string }) => void,
  ): unknown;
}

/** Follows `in_hot_standby` on `client`'s connection from now on (once per client). */
export function followHotStandby(client: object): void {
  const connection = (client as { connection?: Partial<ReportingConnection> }).connection;
  if (typeof connection?.on !== 'function' || followed.has(client)) return;
  followed.add(client);
  connection.on('parameterStatus', (message) => {
    if (message.parameterName === 'in_hot_standby')
      standby.set(client, message.parameterValue === 'on');
  });
}

const followed = new WeakSet<object>();

/**
 * `true`: the connection is known to be a standby and has reported no end of recovery since;
 * `false`: it reported `off` (a primary, or promoted); `undefined`: not known (its start-up
 * report was not seen, or the server predates PostgreSQL 14).
 */
export function hotStandby(client: object): boolean | undefined {
  return standby.get(client);
}

/**
 * Records what a statement on the connection found (`pg_is_in_recovery()`, and the
 * `in_hot_standby` setting, `null` before PostgreSQL 14): from then on its reports tell.
 */
export function learnedHotStandby(client: object, inRecovery: boolean, setting: unknown): void {
  if (!followed.has(client)) return;
  if (!inRecovery) standby.set(client, false);
  else if (setting === 'on' && standby.get(client) === undefined) standby.set(client, true);
}

/**
 * A `pg.Client` constructor, typed without `@types/pg` (freshgate's types do not need it):
 * `pg.Pool`'s `Client` option accepts it as it is.
 */
// biome-ignore lint/suspicious/noExplicitAny: a pg.Client, named without importing @types/pg into the package's types.
export type HotStandbyClientClass = new (config?: string | object) => any;

/**
 * The `pg.Client` of the pools freshgate creates: follows `in_hot_standby` from the
 * connection's start, so that its start-up report is seen. Give it to a replica pool you make
 * yourself, and its connections need no question after their first monotonic/causal read.
 *
 * @example
 * ```ts
 * const r1 = new pg.Pool({ connectionString: process.env.REPLICA_1_URL, Client: HotStandbyClient });
 * const gate = await createFreshgate({ primary, replicas: { r1 }, secret });
 * ```
 */
export const HotStandbyClient: HotStandbyClientClass = class HotStandbyClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    followHotStandby(this);
  }
};
