import type { Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import { Kysely, PostgresDialect } from 'kysely';

interface Database {
  notes: { id: string; body: string };
}

export function kyselyNotes(gate: Freshgate) {
  // One RoutedPool for the process: each statement runs where the current request sends it.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new RoutedPool(gate) }) });
  return {
    add: async (id: string, body: string) => {
      await db.insertInto('notes').values({ id, body }).execute(); // primary; token
    },
    find: async (id: string) =>
      (await db.selectFrom('notes').selectAll().where('id', '=', id).executeTakeFirst()) ?? null,
    // A row lock always goes to the primary.
    lock: async (id: string) =>
      (await db
        .selectFrom('notes')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst()) ?? null,
    // BEGIN … COMMIT on one primary connection; the token is set once COMMIT returns.
    addAndRead: (id: string, body: string) =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto('notes').values({ id, body }).execute();
        return (
          (await trx.selectFrom('notes').selectAll().where('id', '=', id).executeTakeFirst()) ??
          null
        );
      }),
  };
}
