import { describe, expect, it } from 'vitest';
import { SharedRead } from './shared-read.js';

/** A read the test settles by hand, on a clock the test moves. */
function setup() {
  const clock = { time: 0, now: () => clock.time };
  const pending: { resolve: (value: number) => void; reject: (error: Error) => void }[] = [];
  let reads = 0;
  const read = new SharedRead(
    () =>
      new Promise<number>((resolve, reject) => {
        reads++;
        pending.push({ resolve, reject });
      }),
    clock,
  );
  return { clock, read, pending, reads: () => reads };
}

describe('SharedRead', () => {
  it('shares the read in flight with callers that need one sent no later than it was', async () => {
    const { clock, read, pending, reads } = setup();
    clock.time = 10;
    const first = read.after(10);
    const second = read.after(5);
    expect(first.shared).toBe(false);
    expect(second.shared).toBe(true);
    expect(reads()).toBe(1);
    pending[0]?.resolve(42);
    expect(await first.value).toBe(42);
    expect(await second.value).toBe(42);
  });

  it('queues one read, sent when the one in flight ends, for every later caller', async () => {
    const { clock, read, pending, reads } = setup();
    clock.time = 10;
    const early = read.after(10);
    clock.time = 20;
    const late = Array.from({ length: 50 }, () => read.after(20));
    expect(late[0]?.shared).toBe(false);
    expect(late.slice(1).every((r) => r.shared)).toBe(true);
    expect(reads()).toBe(1);
    pending[0]?.resolve(1);
    expect(await early.value).toBe(1);
    await Promise.resolve();
    expect(reads()).toBe(2);
    pending[1]?.resolve(2);
    expect(await Promise.all(late.map((r) => r.value))).toEqual(late.map(() => 2));
    // Nothing in flight: the next caller starts a read of its own.
    read.after(20);
    expect(reads()).toBe(3);
  });

  it('rejects every sharer of a failed read, and the next caller reads again', async () => {
    const { clock, read, pending, reads } = setup();
    clock.time = 10;
    const a = read.after(10);
    const b = read.after(10);
    pending[0]?.reject(new Error('connection terminated'));
    await expect(a.value).rejects.toThrow('connection terminated');
    await expect(b.value).rejects.toThrow('connection terminated');
    const c = read.after(10);
    expect(reads()).toBe(2);
    pending[1]?.resolve(7);
    expect(await c.value).toBe(7);
  });
});
