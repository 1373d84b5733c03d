import type { Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, text } from 'drizzle-orm/pg-core';

export const notes = pgTable('notes', {
  id: text('id').primaryKey(),
  body: text('body').notNull(),
});

export function drizzleNotes(gate: Freshgate) {
  // One RoutedPool for the process: each statement runs where the current request sends it.
  const db = drizzle({ client: new RoutedPool(gate), schema: { notes } });
  return {
    add: async (id: string, body: string) => {
      await db.insert(notes).values({ id, body }); // primary; the response gets a token
    },
    // A relational query: a read, routed by the route's contract.
    find: async (id: string) =>
      (await db.query.notes.findFirst({ where: eq(notes.id, id) })) ?? null,
    // A row lock always goes to the primary.
    lock: async (id: string) =>
      (await db.select().from(notes).where(eq(notes.id, id)).for('update'))[0] ?? null,
    // BEGIN … COMMIT on one primary connection; the token is set once COMMIT returns.
    addAndRead: (id: string, body: string) =>
      db.transaction(async (tx) => {
        await tx.insert(notes).values({ id, body });
        const [row] = await tx.select().from(notes).where(eq(notes.id, id));
        return row ?? null;
      }),
  };
}
