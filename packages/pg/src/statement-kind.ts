/** Where a statement must run: `read` may go to a replica, `write` must go to the primary. */
export type StatementKind = 'read' | 'write';

// Leading keywords of statements that cannot change data when run alone.
const READ_STARTS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN']);

// Anything here makes a read-looking statement a write (or need the primary): writable CTEs,
// row locks, SELECT INTO, sequence and advisory-lock functions, EXPLAIN ANALYZE (which runs
// the statement), and COPY/LOCK/etc. reached through EXPLAIN or WITH.
const WRITE_MARKERS =
  /\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY|LOCK|CALL|DO|NEXTVAL|SETVAL|PG_ADVISORY_\w+|PG_TRY_ADVISORY_\w+|LO_\w+|ANALYZE|ANALYSE|INTO)\b|\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b/;

/**
 * Internal (shared with `session-statement.ts`, not exported from the package).
 * Removes comments, string literals, quoted identifiers and dollar-quoted bodies, so that
 * keywords inside them do not count; returns the rest upper-cased. Unterminated constructs
 * swallow the rest of the text (the caller then sees no keyword and classifies as write
 * only if the start is not a read; a malformed statement fails on the server anyway).
 */
export function stripNoise(sql: string): string {
  // Plain text is copied in slices between the characters that can open noise; most
  // statements have few of them, so this touches each character once, in native code.
  const opener = /--|\/\*|['"$]/g;
  let out = '';
  let i = 0;
  const n = sql.length;
  for (let match = opener.exec(sql); match !== null; match = opener.exec(sql)) {
    out += sql.slice(i, match.index);
    i = match.index;
    const c = sql[i]!;
    if (c === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end;
      out += ' ';
    } else if (c === '/') {
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
    } else {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
        out += ' s ';
      } else {
        out += c;
        i++;
      }
    }
    opener.lastIndex = i;
  }
  if (i < n) out += sql.slice(i);
  return out.toUpperCase();
}

/**
 * Classifies one SQL text. Only statements recognised as plain reads are `read`: anything
 * else — DML, DDL, row locks (`FOR UPDATE/SHARE`), writable CTEs, `SELECT … INTO`, sequence
 * or advisory-lock functions, several statements in one text, or anything not understood —
 * is `write` and goes to the primary. Functions with hidden side effects cannot be seen
 * from the text: send such reads with `db.primary()`.
 *
 * @example
 * ```ts
 * statementKind('SELECT * FROM cases WHERE id = $1');            // 'read'
 * statementKind('SELECT * FROM cases WHERE id = $1 FOR UPDATE'); // 'write'
 * statementKind('WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x'); // 'write'
 * ```
 */
export const statementKind: (sql: string) => StatementKind = memoizeByText(classify);

// Statement texts repeat (parameters travel apart from them), so what is read from a text is
// kept for the texts an application repeats.
const CACHED_TEXTS = 512;
const CACHED_TEXT_MAX = 2_048;

/**
 * Internal (shared with `session-statement.ts`). `fn` with its answers kept per text: at most
 * 512 texts of up to 2 KiB each; when full, the oldest text goes.
 */
export function memoizeByText<T>(fn: (sql: string) => T): (sql: string) => T {
  const known = new Map<string, T>();
  return (sql) => {
    if (known.has(sql)) return known.get(sql) as T;
    const value = fn(sql);
    if (sql.length <= CACHED_TEXT_MAX) {
      if (known.size >= CACHED_TEXTS) known.delete(known.keys().next().value as string);
      known.set(sql, value);
    }
    return value;
  };
}

function classify(sql: string): StatementKind {
  const text = stripNoise(sql).trim();
  // Several statements in one text: one of them may write (and they share a transaction).
  const body = text.replace(/;\s*$/, '');
  if (body.includes(';')) return 'write';
  const first = /^[\s(]*([A-Z]+)/.exec(body)?.[1];
  if (!first || !READ_STARTS.has(first)) return 'write';
  return WRITE_MARKERS.test(body) ? 'write' : 'read';
}
