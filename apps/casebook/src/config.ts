/** Settings from the environment (see README). */
export interface CasebookConfig {
  primaryUrl: string;
  replicas: Map<string, string>;
  redisUrl: string | undefined;
  secret: string;
  port: number;
  host: string;
  framework: 'express' | 'fastify';
  lab: boolean;
  /** `CASEBOOK_METRICS=1`: serve freshgate's metrics at `/metrics` (Prometheus text format). */
  metrics: boolean;
}

/** Options of {@link readConfig}. */
export interface ReadConfigOptions {
  /**
   * Token secret to use when `FRESHGATE_SECRET` is not set. Only `pnpm demo` passes one: a
   * secret generated for the run, which dies with it. Anywhere else the variable is required:
   * a secret written in source code would let anyone forge tokens.
   */
  fallbackSecret?: string;
}

/** Reads and validates the environment; throws with the variable name on bad input. */
export function readConfig(
  env: NodeJS.ProcessEnv = process.env,
  options: ReadConfigOptions = {},
): CasebookConfig {
  const secret = env.FRESHGATE_SECRET || options.fallbackSecret;
  if (!secret) {
    throw new Error(
      'FRESHGATE_SECRET is required: a random secret of at least 32 bytes, e.g. `openssl rand -base64 32` (or run `pnpm demo`, which generates one per run)',
    );
  }
  const primaryUrl = env.DATABASE_PRIMARY_URL;
  if (!primaryUrl)
    throw new Error('DATABASE_PRIMARY_URL is required (or run `pnpm demo` for embedded servers)');
  const replicas = new Map<string, string>();
  for (const entry of (env.DATABASE_REPLICA_URLS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.indexOf('=');
    if (at <= 0)
      throw new Error(`DATABASE_REPLICA_URLS: expected name=postgres://…, got "${entry}"`);
    replicas.set(entry.slice(0, at), entry.slice(at + 1));
  }
  const framework = env.FRESHGATE_FRAMEWORK ?? 'fastify';
  if (framework !== 'express' && framework !== 'fastify') {
    throw new Error(`FRESHGATE_FRAMEWORK must be express or fastify, got "${framework}"`);
  }
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`PORT must be a port number, got "${env.PORT}"`);
  return {
    primaryUrl,
    replicas,
    redisUrl: env.REDIS_URL || undefined,
    secret,
    port,
    host: env.HOST || '127.0.0.1',
    framework,
    lab: env.CASEBOOK_LAB === '1',
    metrics: env.CASEBOOK_METRICS === '1',
  };
}
