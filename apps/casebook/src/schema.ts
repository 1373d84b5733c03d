import type { Queryable } from '@freshgate/pg';

// Idempotent, and safe when several instances start at once: the advisory lock serialises
// the CREATE … IF NOT EXISTS statements, which can otherwise collide in the catalog.
const SCHEMA = `
SELECT pg_advisory_xact_lock(7243001);
CREATE TABLE IF NOT EXISTS cases (
  id serial PRIMARY KEY,
  title text NOT NULL,
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_review', 'closed')),
  owner text NOT NULL,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cases_owner_id ON cases (owner, id DESC);
CREATE TABLE IF NOT EXISTS permissions (
  username text PRIMARY KEY,
  can_edit boolean NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
`;

/** Creates the schema on the primary (in one transaction). */
export async function createSchema(primary: {
  query(text: string): Promise<unknown>;
}): Promise<void> {
  await primary.query(`BEGIN;${SCHEMA}COMMIT;`);
}

/** A few cases so that a new user sees something. */
export async function seed(db: Queryable): Promise<void> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM cases');
  if ((rows[0]?.n ?? 0) > 0) return;
  await db.query(
    `INSERT INTO cases (title, status, owner) VALUES
      ('Stolen bicycle, Market Street', 'open', 'ada'),
      ('Noise complaint, 4th floor', 'in_review', 'grace'),
      ('Lost passport', 'closed', 'ada'),
      ('Broken street light', 'open', 'linus')`,
  );
}
