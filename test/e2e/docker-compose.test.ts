import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// No Docker engine runs on CI machines: this checks the file's structure instead.
const ROOT = new URL('../../', import.meta.url);
const compose = parse(readFileSync(new URL('docker-compose.yml', ROOT), 'utf8'), {
  merge: true,
}) as {
  services: Record<
    string,
    {
      image?: string;
      ports?: string[];
      environment?: Record<string, string>;
      healthcheck?: { test: string[] };
      depends_on?: Record<string, { condition: string }>;
      entrypoint?: string[];
    }
  >;
};
const services = compose.services;

/** The environment variables the casebook app reads. */
const appEnv = [
  ...readFileSync(new URL('apps/casebook/src/config.ts', ROOT), 'utf8').matchAll(/env\.([A-Z_]+)/g),
].map((m) => m[1]!);

describe('docker-compose.yml', () => {
  it('has a primary, two replicas, Redis and casebook, each with a healthcheck and a port', () => {
    expect(Object.keys(services).sort()).toEqual([
      'casebook',
      'primary',
      'redis',
      'replica1',
      'replica2',
    ]);
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck?.test, `${name} healthcheck`).toBeDefined();
      expect(service.ports?.length, `${name} ports`).toBeGreaterThan(0);
    }
    const hostPorts = Object.values(services).flatMap((s) => s.ports!.map((p) => p.split(':')[0]));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('sets the replicas up as streaming standbys of the primary', () => {
    for (const name of ['replica1', 'replica2']) {
      const script = services[name]!.entrypoint!.join('\n');
      expect(script).toMatch(/pg_basebackup -h primary .* -R -X stream -c fast/);
      expect(services[name]!.depends_on).toEqual({ primary: { condition: 'service_healthy' } });
    }
    expect(readFileSync(new URL('docker/primary-init.sh', ROOT), 'utf8')).toMatch(
      /REPLICATION LOGIN/,
    );
  });

  it('configures casebook with exactly the variables the app reads, pointing at the compose services', () => {
    const env = services.casebook!.environment!;
    expect(appEnv.length).toBeGreaterThan(5);
    expect(Object.keys(env).sort()).toEqual([...new Set(appEnv)].sort());
    expect(env.DATABASE_PRIMARY_URL).toMatch(/@primary:5432\//);
    expect(env.DATABASE_REPLICA_URLS).toMatch(
      /^r1=postgres:\/\/.*@replica1:5432\/.*,r2=postgres:\/\/.*@replica2:5432\//,
    );
    expect(env.REDIS_URL).toBe('redis://redis:6379');
    expect(Object.keys(services.casebook!.depends_on!).sort()).toEqual([
      'primary',
      'redis',
      'replica1',
      'replica2',
    ]);
  });
});
