import { describe, expect, it } from 'vitest';
import { statementKind, stripNoise } from './statement-kind.js';

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

describe('stripNoise', () => {
  it('matches a character-by-character scan on random texts full of quotes and comments', () => {
    const pieces = [
      'SELECT',
      ' ',
      'a',
      '-',
      '--',
      '\n',
      '/*',
      '*/',
      '/',
      '*',
      "'",
      "''",
      '"',
      '\\',
      '$',
      '$$',
      '$x$',
      '$1',
      ';',
      'insert',
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let run = 0; run < 5_000; run++) {
      let sql = '';
      const length = Math.floor(random() * 24);
      for (let i = 0; i < length; i++) sql += pieces[Math.floor(random() * pieces.length)];
      expect(stripNoise(sql), sql).toBe(referenceStripNoise(sql));
    }
  });

  it('a text classified again gives the same kind (texts are cached), long texts too', () => {
    const long = `SELECT 1 /* ${'x'.repeat(5_000)} */ FOR UPDATE`;
    for (let i = 0; i < 3; i++) {
      expect(statementKind('SELECT * FROM cases WHERE id = $1')).toBe('read');
      expect(statementKind('DELETE FROM cases WHERE id = $1')).toBe('write');
      expect(statementKind(long)).toBe('write');
    }
    // More distinct texts than the cache holds: the oldest go, the answers stay right.
    for (let i = 0; i < 1_000; i++) expect(statementKind(`SELECT ${i}`)).toBe('read');
    expect(statementKind('DELETE FROM cases WHERE id = $1')).toBe('write');
  });
});

// The scan stripNoise replaced (one character at a time), kept as the reference it must match.
function referenceStripNoise(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end;
      out += ' ';
    } else if (c === '/' && next === '*') {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      out += ' ';
    } else if (c === "'" || c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === c) {
          if (sql[i + 1] === c) i += 2;
          else break;
        } else if (sql[i] === '\\' && c === "'") i += 2;
        else i++;
      }
      i++;
      out += c === '"' ? ' q ' : ' s ';
    } else if (c === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
        out += ' s ';
      } else {
        out += c;
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return out.toUpperCase();
}
