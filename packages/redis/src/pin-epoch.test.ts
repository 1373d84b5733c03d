import { ManualClock } from '@freshgate/core/testing';
import { describe, expect, it, vi } from 'vitest';
import { META_COMMAND, READ_COMMAND } from './pin-script.js';
import { AOF_RESTART_WINDOW_MS, redisPinStore } from './redis-pin-store.js';
import type { RedisClientLike } from './types.js';

// Real Redis restarts, flushes and cut-off instances are in test/faults/pin-loss.test.ts; this
// client stands in for Redis's answers only, to pin down how the store reads them.
function scriptedRedis() {
  const state = {
    gen: 'g1' as string | null,
    beats: new Map<string, string>(),
    info: {
      run_id: 'a',
      master_replid: 'r',
      master_replid2: '0000',
      aof_enabled: '0',
      evicted_keys: '0',
    },
    appendfsync: 'everysec',
    failing: false,
    extends: [] as unknown[][],
    metaCalls: 0,
  };
  const fail = () => Promise.reject(new Error('ECONNREFUSED'));
  const client: Record<string, unknown> = {
    status: 'ready',
    get: async () => (state.failing ? fail() : null),
    hget: async () => (state.failing ? fail() : state.gen),
    config: async () => ['appendfsync', state.appendfsync],
    info: async () =>
      Object.entries(state.info)
        .map(([k, v]) => `${k}:${v}\r\n`)
        .join(''),
    defineCommand(name: string) {
      client[name] =
        name === READ_COMMAND
          ? async () => (state.failing ? fail() : [null, state.gen])
          : name === META_COMMAND
            ? async (_key: string, candidate: string, id: string, at: number) => {
                if (state.failing) return fail();
                state.metaCalls++;
                state.gen ??= candidate;
                if (id !== '') state.beats.set(`i:${id}`, String(at));
                return ['gen', state.gen, ...[...state.beats].flat()];
              }
            : async (...args: unknown[]) => {
                if (state.failing) return fail();
                state.extends.push(args);
                return 1;
              };
    },
  };
  return { client: client as unknown as RedisClientLike, state };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const FAST = { instances: { heartbeat: 5, overdue: 100 }, distrustFor: 1_000 } as const;

async function beats(state: { metaCalls: number }, n = 3) {
  const target = state.metaCalls + n;
  for (let i = 0; i < 400 && state.metaCalls < target; i++) await sleep(5);
}

describe('redisPinStore: knowing when Redis lost pins', () => {
  it('a generation that disappears (restart, FLUSHALL) is a new epoch, seen by the pin read itself; absence is distrusted for distrustFor', async () => {
    const clock = new ManualClock(1_000_000);
    const { client, state } = scriptedRedis();
    const store = redisPinStore(client, { ...FAST, clock });
    await beats(state);
    expect(store.vouch()).toEqual({ epoch: 0, complete: true });
    state.gen = null;
    await store.get('s');
    expect(store.vouch()).toEqual({ epoch: 1, complete: false });
    await beats(state);
    // The fresh generation written after the loss is the same loss, not another one.
    expect(store.vouch().epoch).toBe(1);
    clock.advance(1_001);
    await beats(state);
    expect(store.vouch()).toEqual({ epoch: 1, complete: true });
    expect(store.stats()).toMatchObject({ epochChanges: 1, vouched: true });
    await store.close();
  });

  it('a new run id or replication id is a new epoch; an AOF restart that kept its data only a short window', async () => {
    const clock = new ManualClock(1_000_000);
    const { client, state } = scriptedRedis();
    // INFO is read every tenth heartbeat.
    const store = redisPinStore(client, { ...FAST, clock });
    await beats(state, 2);
    state.info.run_id = 'b';
    await beats(state, 12);
    expect(store.vouch()).toEqual({ epoch: 1, complete: false });
    clock.advance(1_001);
    // Restarted with AOF (appendfsync everysec): a new run id and replication id, same data.
    state.info.run_id = 'c';
    state.info.master_replid = 'r2';
    state.info.aof_enabled = '1';
    await beats(state, 12);
    expect(store.vouch()).toEqual({ epoch: 1, complete: false });
    clock.advance(AOF_RESTART_WINDOW_MS + 1);
    await beats(state, 2);
    expect(store.vouch()).toEqual({ epoch: 1, complete: true });
    // A replica promoted in a failover (it carries the old id as master_replid2): a new epoch,
    // AOF or not.
    state.info.run_id = 'd';
    state.info.master_replid2 = state.info.master_replid;
    state.info.master_replid = 'promoted';
    await beats(state, 12);
    expect(store.vouch().epoch).toBe(2);
    // A restart with AOF whose fsync policy may lose more than a second: a new epoch too.
    clock.advance(1_001);
    state.appendfsync = 'no';
    state.info.run_id = 'e';
    state.info.master_replid2 = '0000';
    state.info.master_replid = 'restarted';
    await beats(state, 12);
    expect(store.vouch().epoch).toBe(3);
    await store.close();
  });

  it('another instance whose heartbeat is overdue makes absence untrusted until it reports again; one gone for good is forgotten', async () => {
    const clock = new ManualClock(1_000_000);
    const { client, state } = scriptedRedis();
    const store = redisPinStore(client, { ...FAST, clock });
    state.beats.set('i:other', String(clock.now()));
    await beats(state);
    expect(store.vouch().complete).toBe(true);
    clock.advance(150);
    await beats(state);
    expect(store.vouch().complete).toBe(false);
    state.beats.set('i:other', String(clock.now()));
    await beats(state);
    expect(store.vouch().complete).toBe(true);
    // Silent for longer than overdue + distrustFor: it left, whatever it held has expired.
    clock.advance(1_200);
    await beats(state);
    expect(store.vouch().complete).toBe(true);
    await store.close();
  });

  it('pins that failed to reach Redis are written back, with their original expiry, before the instance reports again; a failed write holds overdue + heartbeat', async () => {
    const clock = new ManualClock(1_000_000);
    const { client, state } = scriptedRedis();
    const store = redisPinStore(client, { ...FAST, clock });
    await beats(state);
    // Alone on the store: nobody else can be asked about a write, no reason to hold it.
    expect(store.unpinnedHoldMs).toBe(0);
    state.beats.set('i:other', String(clock.now() + 60_000));
    await beats(state);
    expect(store.unpinnedHoldMs).toBe(105);
    state.failing = true;
    await expect(store.extend('s', { lsn: 7n, ttlMs: 5_000 })).rejects.toThrow();
    await expect(store.extend('s', { lsn: 5n, ttlMs: 5_000 })).rejects.toThrow();
    expect(store.stats().writeBackPending).toBe(1);
    clock.advance(200);
    // Its own heartbeat is overdue: it cannot vouch either.
    expect(store.vouch().complete).toBe(false);
    state.failing = false;
    await beats(state);
    expect(store.stats()).toMatchObject({ writeBackPending: 0, writtenBack: 1 });
    const [key, lsn, , , ttl, expiresAt] = state.extends[0] as unknown[];
    expect(String(key)).toMatch(/^freshgate:pin:/);
    // Max-merged (7, not 5), and the TTL left from the original write.
    expect(lsn).toBe(7n.toString(16).padStart(16, '0'));
    expect(ttl).toBe(4_800);
    expect(expiresAt).toBe(1_000_000 + 5_000);
    expect(store.vouch().complete).toBe(true);
    await store.close();
  });

  it('writes back failed pins also with instance reporting off (instances: false)', async () => {
    const { client, state } = scriptedRedis();
    const store = redisPinStore(client, { instances: false });
    state.failing = true;
    await expect(store.extend('s', { lsn: 9n, ttlMs: 5_000 })).rejects.toThrow();
    state.failing = false;
    for (let i = 0; i < 100 && store.stats().writeBackPending > 0; i++) await sleep(10);
    expect(store.stats()).toMatchObject({ writeBackPending: 0, writtenBack: 1 });
    expect(state.metaCalls).toBe(0);
    await store.close();
  });

  it('arms no timer with instance reporting off until a write fails, and none once it is written back', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    try {
      const { client, state } = scriptedRedis();
      const store = redisPinStore(client, { instances: false });
      expect(vi.getTimerCount()).toBe(0);
      state.failing = true;
      await expect(store.extend('s', { lsn: 9n, ttlMs: 5_000 })).rejects.toThrow();
      expect(vi.getTimerCount()).toBe(1);
      state.failing = false;
      await vi.advanceTimersByTimeAsync(100);
      expect(store.stats()).toMatchObject({ writeBackPending: 0, writtenBack: 1 });
      expect(vi.getTimerCount()).toBe(0);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
