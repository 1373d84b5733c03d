import { describe, expect, it } from 'vitest';
import { ReplayWaits } from './replay-waits.js';

/** A replica whose position the test moves; counts the reads and holds each for `readMs`. */
function replica(readMs = 1) {
  const state = { position: 0n as bigint | undefined, reads: 0, failing: false };
  const read = async (name: string) => {
    expect(name).toBe('r1');
    state.reads++;
    await new Promise((resolve) => setTimeout(resolve, readMs));
    if (state.failing) throw new Error('connection terminated');
    return state.position;
  };
  return { state, read };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await pause(5);
  }
}

describe('ReplayWaits', () => {
  it('serves every request waiting on a replica with one read at a time', async () => {
    const { state, read } = replica();
    const waits = new ReplayWaits(read, 10);
    const settled: number[] = [];
    const all = Array.from({ length: 50 }, (_, i) =>
      waits.wait('r1', BigInt(i % 5) + 1n, 5_000).then(() => settled.push(i)),
    );
    await pause(60);
    expect(settled).toEqual([]);
    state.position = 3n;
    await until(() => settled.length >= 30);
    await pause(30);
    // Waiters for LSNs 1-3 are done; those for 4 and 5 still wait.
    expect(settled.length).toBe(30);
    state.position = 5n;
    await Promise.all(all);
    // About one read per 10 ms: 50 requests polling on their own would have sent 50 reads per
    // 10 ms, over 600 in the 120 ms waited above alone.
    expect(state.reads).toBeLessThan(100);
    const reads = state.reads;
    await pause(50);
    expect(state.reads).toBe(reads);
  });

  it('lets a request go after its timeout, and stops reading once nobody waits', async () => {
    const { state, read } = replica();
    const waits = new ReplayWaits(read, 5);
    const started = performance.now();
    await waits.wait('r1', 10n, 80);
    expect(performance.now() - started).toBeGreaterThanOrEqual(75);
    const reads = state.reads;
    expect(reads).toBeGreaterThanOrEqual(1);
    await pause(50);
    expect(state.reads).toBe(reads);
  });

  it('reads at once for a request that starts waiting while the loop pauses', async () => {
    const { state, read } = replica();
    const waits = new ReplayWaits(read, 10_000);
    const first = waits.wait('r1', 10n, 5_000);
    await pause(20);
    expect(state.reads).toBe(1);
    state.position = 10n;
    const started = performance.now();
    await waits.wait('r1', 5n, 5_000);
    // The newcomer's read settled both, long before the 10 s pause ended.
    await first;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(state.reads).toBe(2);
  });

  it('ends every wait when a read fails or finds no position', async () => {
    const { state, read } = replica();
    const waits = new ReplayWaits(read, 5);
    state.failing = true;
    await Promise.all([waits.wait('r1', 10n, 60_000), waits.wait('r1', 20n, 60_000)]);
    state.failing = false;
    state.position = undefined;
    await waits.wait('r1', 10n, 60_000);
  });

  it('settles every wait on close', async () => {
    const { read } = replica();
    const waits = new ReplayWaits(read, 5);
    const pending = [waits.wait('r1', 10n, 60_000), waits.wait('r1', 20n, 60_000)];
    await pause(20);
    waits.close();
    await Promise.all(pending);
  });
});
