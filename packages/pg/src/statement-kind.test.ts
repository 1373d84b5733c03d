import { describe, expect, it } from 'vitest';
import { statementKind } from './statement-kind.js';

describe('statementKind', () => {
  it.each([
    'SELECT 1',
    'select * from cases where id = $1',
    '  (SELECT 1) UNION (SELECT 2)',
    'WITH recent AS (SELECT * FROM cases) SELECT * FROM recent',
    'VALUES (1), (2)',
    'TABLE cases',
    'SHOW server_version',
    'EXPLAIN SELECT 1',
    "SELECT 'insert into x' AS s",
    'SELECT "update" FROM t',
    '-- delete everything\nSELECT 1',
    '/* update /* nested */ */ SELECT 1',
    'SELECT $$ DELETE FROM t $$',
    'SELECT $fn$ FOR UPDATE $fn$',
    'SELECT 1;',
    "SELECT 'it''s' FROM t",
    'SELECT updated_at, inserted_by FROM t',
  ])('read: %s', (sql) => {
    expect(statementKind(sql)).toBe('read');
  });

  it.each([
    'INSERT INTO cases (title) VALUES ($1)',
    'update cases set status = $1',
    'DELETE FROM cases',
    'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE',
    'CREATE TABLE t (id int)',
    'SELECT * FROM cases WHERE id = $1 FOR UPDATE',
    'SELECT * FROM cases FOR NO KEY UPDATE',
    'SELECT * FROM cases FOR SHARE',
    'SELECT * FROM cases FOR KEY SHARE SKIP LOCKED',
    'WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone',
    'SELECT * INTO backup FROM cases',
    "SELECT nextval('seq')",
    'SELECT pg_advisory_lock(1)',
    'EXPLAIN ANALYZE DELETE FROM t',
    'EXPLAIN ANALYZE SELECT 1',
    'SELECT 1; DELETE FROM t',
    'BEGIN',
    'SET search_path = x',
    'VACUUM',
    '',
    'CALL proc()',
  ])('write: %s', (sql) => {
    expect(statementKind(sql)).toBe('write');
  });
});
