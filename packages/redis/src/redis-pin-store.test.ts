import { ConfigError, StoreError } from '@freshgate/core';
import { ManualClock } from '@freshgate/core/testing';
import { describe, expect, it } from 'vitest';
import { EXTEND_COMMAND, READ_COMMAND } from './pin-script.js';
import { redisPinStore } from './redis-pin-store.js';
import type { RedisClientLike } from './types.js';

// Redis behaviour is tested against real servers in test/integration/redis. These clients
// only stand in for what the store does on its own: validate options, register its script,
// bound a call that never returns, and refuse calls while its circuit is open.
function silentClient(status = 'ready') {
  const calls = { get: 0, defineCommand: 0 };
  const client = {
    status,
    get: () => {
      calls.get++;
      return new Promise<string | null>(() => {});
    },
    defineCommand(name: string) {
      calls.defineCommand++;
      (client as unknown as Record<string, unknown>)[name] = () => new Promise(() => {});
    },
  };
  return { client: client as RedisClientLike & { status: string }, calls };
}

describe('redisPinStore: configuration', () => {
  it('rejects something that is not an ioredis client', () => {
    expect(() => redisPinStore({} as never)).toThrow(ConfigError);
    expect(() => redisPinStore(undefined as never)).toThrow(/`redis`/);
  });

  it('names unknown options and suggests the right one', () => {
    const { client } = silentClient();
    expect(() => redisPinStore(client, { prefx: 'a:' } as never)).toThrow(
      /`prefx`.*Did you mean "prefix"/,
    );
    expect(() => redisPinStore(client, { circuitBreaker: { opn: 10 } } as never)).toThrow(
      /`circuitBreaker.opn`.*Did you mean "open"/,
    );
  });

  it('validates values when the factory runs', () => {
    const { client } = silentClient();
    expect(() => redisPinStore(client, { prefix: '' })).toThrow(/`prefix`/);
    expect(() => redisPinStore(client, { prefix: '{app}:pin:' })).toThrow(/`prefix`.*slots/);
    expect(() => redisPinStore(client, { timeout: '50 sec' as never })).toThrow(/`timeout`/);
    expect(() => redisPinStore(client, { timeout: 0 })).toThrow(/`timeout`/);
    expect(() => redisPinStore(client, { circuitBreaker: { failureThreshold: 0 } })).toThrow(
      /`circuitBreaker.failureThreshold`/,
    );
    expect(() => redisPinStore(client, { circuitBreaker: { open: '2s', maxOpen: '1s' } })).toThrow(
      /`circuitBreaker.maxOpen`/,
    );
    expect(() => redisPinStore(client, { instances: { heartbeat: '1s', overdue: '1s' } })).toThrow(
      /`instances`.*twice the heartbeat/,
    );
    expect(() => redisPinStore(client, { instances: { beat: 1 } as never })).toThrow(
      /`instances.beat`/,
    );
    expect(() => redisPinStore(client, { writeBack: -1 })).toThrow(/`writeBack`/);
  });

  it('registers its scripts (extend, heartbeat, read) once per client, however many stores share it', () => {
    const { client, calls } = silentClient();
    const commands = client as unknown as Record<string, unknown>;
    commands.hget = () => new Promise(() => {});
    redisPinStore(client);
    redisPinStore(client, { prefix: 'other:' });
    expect(calls.defineCommand).toBe(3);
    expect(typeof commands[EXTEND_COMMAND]).toBe('function');
    expect(typeof commands[READ_COMMAND]).toBe('function');
  });

  it('reads pins with GET and HGET on Redis Cluster (the keys are in different slots), with GET alone without instances', () => {
    const cluster = silentClient();
    const clusterCommands = cluster.client as unknown as Record<string, unknown>;
    clusterCommands.hget = () => new Promise(() => {});
    clusterCommands.isCluster = true;
    redisPinStore(cluster.client);
    expect(clusterCommands[READ_COMMAND]).toBeUndefined();
    const single = silentClient();
    const singleCommands = single.client as unknown as Record<string, unknown>;
    singleCommands.hget = () => new Promise(() => {});
    redisPinStore(single.client, { instances: false });
    expect(singleCommands[READ_COMMAND]).toBeUndefined();
    expect(single.calls.defineCommand).toBe(1);
  });
});

describe('redisPinStore: its own guards', () => {
  it('bounds a call the client never answers by `timeout`, then opens the circuit', async () => {
    const clock = new ManualClock();
    const { client, calls } = silentClient();
    const store = redisPinStore(client, { timeout: 5, clock });
    // Told to the engine, which then sets no timer of its own around the store's calls.
    expect(store.timeoutMs).toBe(5);
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await expect(store.get('s')).rejects.toThrow(/timed out after 5ms/);
      expect(performance.now() - started).toBeLessThan(1_000);
    }
    expect(store.circuit).toBe('open');
    await expect(store.extend('s', { lsn: 1n, ttlMs: 100 })).rejects.toThrow(/circuit open/);
    await expect(store.get('s')).rejects.toBeInstanceOf(StoreError);
    expect(calls.get).toBe(3);
    clock.advance(250);
    expect(store.circuit).toBe('half-open');
    await expect(store.get('s')).rejects.toThrow(/timed out/);
    expect(calls.get).toBe(4);
    expect(store.circuit).toBe('open');
  });

  it('fails at once while the client reports it is disconnected', async () => {
    const { client, calls } = silentClient('reconnecting');
    const store = redisPinStore(client);
    await expect(store.get('s')).rejects.toThrow(/Redis client is reconnecting/);
    expect(calls.get).toBe(0);
  });

  it('rejects an LSN beyond 64 bits as a store error instead of writing it', async () => {
    const { client } = silentClient();
    const store = redisPinStore(client);
    await expect(store.extend('s', { lsn: 2n ** 64n, ttlMs: 100 })).rejects.toBeInstanceOf(
      StoreError,
    );
  });
});
