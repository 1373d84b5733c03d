import { describe, expect, it } from 'vitest';
import { transactionControl } from './routed-client.js';

describe('transactionControl', () => {
  it('recognises what ORMs send to begin and end a transaction', () => {
    expect(transactionControl('begin')).toBe('begin'); // Drizzle, Kysely
    expect(transactionControl('BEGIN')).toBe('begin'); // Prisma
    expect(transactionControl('START TRANSACTION')).toBe('begin'); // TypeORM
    expect(transactionControl('start transaction isolation level serializable')).toBe('begin');
    expect(transactionControl('begin isolation level read committed')).toBe('begin');
    expect(transactionControl('commit')).toBe('commit');
    expect(transactionControl('END;')).toBe('commit');
    expect(transactionControl('rollback')).toBe('rollback');
    expect(transactionControl('ABORT')).toBe('rollback');
  });

  it('leaves savepoints, prepared transactions and ordinary statements alone', () => {
    expect(transactionControl('ROLLBACK TO SAVEPOINT sp1')).toBeNull();
    expect(transactionControl('rollback transaction to sp1')).toBeNull();
    expect(transactionControl('release savepoint sp1')).toBeNull();
    expect(transactionControl('savepoint sp1')).toBeNull();
    expect(transactionControl("ROLLBACK PREPARED 'x'")).toBeNull();
    expect(transactionControl('START something')).toBeNull();
    expect(transactionControl('SELECT 1')).toBeNull();
    expect(transactionControl('/* begin */ SELECT 1')).toBeNull();
  });
});
