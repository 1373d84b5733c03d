import { describe, expect, it } from 'vitest';
import { unsafeStatement } from './session-statement.js';

describe('unsafeStatement', () => {
  it.each([
    ['BEGIN', 'BEGIN'],
    ['begin isolation level serializable', 'BEGIN'],
    ['START TRANSACTION READ ONLY', 'START TRANSACTION'],
    ['COMMIT', 'COMMIT'],
    ['END', 'END'],
    ['ROLLBACK', 'ROLLBACK'],
    ['ABORT', 'ABORT'],
    ['SAVEPOINT a', 'SAVEPOINT'],
    ['RELEASE SAVEPOINT a', 'RELEASE'],
    ['ROLLBACK TO SAVEPOINT a', 'ROLLBACK TO'],
    ["SET search_path = 'app'", 'SET'],
    ['set session statement_timeout = 1', 'SET'],
    ['SET ROLE admin', 'SET'],
    ["SET LOCAL lock_timeout = '1s'", 'SET LOCAL'],
    ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SET TRANSACTION'],
    ['RESET ALL', 'RESET'],
    ['DISCARD ALL', 'DISCARD'],
    ['LISTEN jobs', 'LISTEN'],
    ['UNLISTEN *', 'UNLISTEN'],
    ['PREPARE q AS SELECT 1', 'PREPARE'],
    ["PREPARE TRANSACTION 'x'", 'PREPARE TRANSACTION'],
    ['DEALLOCATE ALL', 'DEALLOCATE'],
    ['DECLARE c CURSOR FOR SELECT 1', 'DECLARE'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'DECLARE … WITH HOLD'],
    ['SELECT 1; BEGIN', 'BEGIN'],
    ['/* note */ -- x\n  COMMIT;', 'COMMIT'],
  ])('outside a transaction rejects %s (as %s)', (sql, keyword) => {
    expect(unsafeStatement(sql, 'request')).toBe(keyword);
  });

  it.each([
    'SELECT 1',
    "SELECT 'BEGIN; SET x = 1'",
    'SELECT $$COMMIT$$',
    "UPDATE cases SET status = 'closed'",
    'INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 2',
    'SELECT CASE WHEN true THEN 1 END',
    'SHOW search_path',
    'NOTIFY jobs',
    'WITH x AS (SELECT 1) SELECT * FROM x',
    '-- BEGIN\nSELECT 1',
  ])('allows %s anywhere', (sql) => {
    expect(unsafeStatement(sql, 'request')).toBeUndefined();
    expect(unsafeStatement(sql, 'transaction')).toBeUndefined();
  });

  it.each([
    'SAVEPOINT a',
    'RELEASE SAVEPOINT a',
    'RELEASE a',
    'ROLLBACK TO SAVEPOINT a',
    'ROLLBACK WORK TO a',
    "SET LOCAL statement_timeout = '5s'",
    'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ',
    'SET CONSTRAINTS ALL DEFERRED',
    'DECLARE c CURSOR FOR SELECT 1',
    'FETCH 10 FROM c',
    'CLOSE c',
  ])('inside a transaction allows %s', (sql) => {
    expect(unsafeStatement(sql, 'transaction')).toBeUndefined();
  });

  it.each([
    ['BEGIN', 'BEGIN'],
    ['COMMIT', 'COMMIT'],
    ['ROLLBACK', 'ROLLBACK'],
    ["SET application_name = 'x'", 'SET'],
    ['RESET statement_timeout', 'RESET'],
    ['LISTEN jobs', 'LISTEN'],
    ['PREPARE q AS SELECT 1', 'PREPARE'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'DECLARE … WITH HOLD'],
  ])('inside a transaction rejects %s', (sql, keyword) => {
    expect(unsafeStatement(sql, 'transaction')).toBe(keyword);
  });
});
