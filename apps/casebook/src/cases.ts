import type { FreshDataSource, Queryable } from '@freshgate/pg';
import { HttpProblem, notFound } from './problem.js';

export const STATUSES = ['open', 'in_review', 'closed'] as const;
export type CaseStatus = (typeof STATUSES)[number];

export interface Case {
  id: number;
  title: string;
  status: CaseStatus;
  owner: string;
  version: number;
}

const COLUMNS = 'id, title, status, owner, version';

/** Permission check: always on the primary (a revocation is seen by the very next check). */
export async function canEdit(db: FreshDataSource, user: string): Promise<boolean> {
  const { rows } = await db
    .primary()
    .query<{ can_edit: boolean }>('SELECT can_edit FROM permissions WHERE username = $1', [user]);
  return rows[0]?.can_edit ?? true;
}

async function requireEdit(db: FreshDataSource, user: string): Promise<void> {
  if (!(await canEdit(db, user))) {
    throw new HttpProblem(403, 'Forbidden', `${user} may not change cases (permission revoked)`);
  }
}

export async function createCase(db: FreshDataSource, user: string, title: string): Promise<Case> {
  await requireEdit(db, user);
  const { rows } = await db.query<Case>(
    `INSERT INTO cases (title, owner) VALUES ($1, $2) RETURNING ${COLUMNS}`,
    [title, user],
  );
  return rows[0]!;
}

export async function getCase(db: Queryable, id: number): Promise<Case> {
  const { rows } = await db.query<Case>(`SELECT ${COLUMNS} FROM cases WHERE id = $1`, [id]);
  if (!rows[0]) throw notFound(`no case ${id}`);
  return rows[0];
}

/**
 * Optimistic concurrency: the UPDATE only matches the current version (on the primary, as
 * every write); 409 when another change came first.
 */
export async function updateStatus(
  db: FreshDataSource,
  user: string,
  id: number,
  status: CaseStatus,
  version: number,
): Promise<Case> {
  await requireEdit(db, user);
  const { rows } = await db.query<Case>(
    `UPDATE cases SET status = $1, version = version + 1, updated_at = now()
      WHERE id = $2 AND version = $3 RETURNING ${COLUMNS}`,
    [status, id, version],
  );
  if (rows[0]) return rows[0];
  // After the write attempt every statement of the request reads the primary.
  const current = await getCase(db, id);
  throw new HttpProblem(
    409,
    'Conflict',
    `case ${id} is at version ${current.version}, not ${version}`,
  );
}

export async function listCases(db: Queryable, owner: string | undefined): Promise<Case[]> {
  const { rows } = owner
    ? await db.query<Case>(
        `SELECT ${COLUMNS} FROM cases WHERE owner = $1 ORDER BY id DESC LIMIT 50`,
        [owner],
      )
    : await db.query<Case>(`SELECT ${COLUMNS} FROM cases ORDER BY id DESC LIMIT 50`);
  return rows;
}

export async function searchCases(db: Queryable, q: string): Promise<Case[]> {
  // Escape LIKE wildcards: the query text is a plain substring.
  const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const { rows } = await db.query<Case>(
    `SELECT ${COLUMNS} FROM cases WHERE title ILIKE $1 ORDER BY id DESC LIMIT 50`,
    [pattern],
  );
  return rows;
}

export async function statusCounts(
  db: Queryable,
): Promise<{ open: number; inReview: number; closed: number }> {
  const { rows } = await db.query<{ status: CaseStatus; n: number }>(
    'SELECT status, count(*)::int AS n FROM cases GROUP BY status',
  );
  const count = (s: CaseStatus) => rows.find((r) => r.status === s)?.n ?? 0;
  return { open: count('open'), inReview: count('in_review'), closed: count('closed') };
}

export async function permission(
  db: FreshDataSource,
  user: string,
): Promise<{ user: string; canEdit: boolean }> {
  return { user, canEdit: await canEdit(db, user) };
}

export async function revoke(
  db: FreshDataSource,
  user: string,
): Promise<{ user: string; canEdit: boolean }> {
  await db.query(
    `INSERT INTO permissions (username, can_edit) VALUES ($1, false)
     ON CONFLICT (username) DO UPDATE SET can_edit = false, changed_at = now()`,
    [user],
  );
  return { user, canEdit: false };
}
