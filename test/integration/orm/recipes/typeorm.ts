import type { Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import pg from 'pg';
import { DataSource, EntitySchema } from 'typeorm';

interface Note {
  id: string;
  body: string;
}

const NoteEntity = new EntitySchema<Note>({
  name: 'Note',
  tableName: 'notes',
  columns: { id: { type: 'text', primary: true }, body: { type: 'text' } },
});

export async function typeormNotes(gate: Freshgate) {
  // TypeORM builds its pool from `driver.Pool`: hand it a RoutedPool over the gate.
  const dataSource = new DataSource({
    type: 'postgres',
    driver: {
      ...pg,
      Pool: class extends RoutedPool {
        constructor() {
          super(gate);
        }
      },
    },
    entities: [NoteEntity],
  });
  await dataSource.initialize(); // outside a request: runs on the primary
  const repo = dataSource.getRepository(NoteEntity);
  return {
    dataSource,
    add: async (id: string, body: string) => {
      await repo.insert({ id, body }); // primary; the response gets a token
    },
    find: (id: string) => repo.findOneBy({ id }),
    // TypeORM takes row locks only inside a transaction, which runs on the primary.
    lock: (id: string) =>
      dataSource.transaction((em) =>
        em
          .getRepository(NoteEntity)
          .findOne({ where: { id }, lock: { mode: 'pessimistic_write' } }),
      ),
    addAndRead: (id: string, body: string) =>
      dataSource.transaction(async (em) => {
        await em.getRepository(NoteEntity).insert({ id, body });
        return em.getRepository(NoteEntity).findOneBy({ id });
      }),
  };
}
