import { describe, expect, it } from 'vitest';
import { EventLoopDelay } from './loop-delay.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps the event loop busy for `ms`: callbacks wait. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** The delay `delay` records once the loop turns again (0 if none within 200 ms). */
async function seen(delay: EventLoopDelay): Promise<number> {
  let ms = 0;
  for (let i = 0; i < 10 && ms === 0; i++) {
    await sleep(20);
    ms = delay.take();
  }
  return ms;
}

describe('EventLoopDelay', () => {
  it('measures nothing until started, and nothing after it stops', async () => {
    const delay = new EventLoopDelay();
    expect(delay.take()).toBe(0);
    delay.start();
    delay.stop();
    await sleep(30);
    expect(delay.take()).toBe(0);
  });

  it('rests a second after the last wake-up: a blocked loop goes unseen until the next one', async () => {
    const delay = new EventLoopDelay();
    delay.start();
    try {
      const started = performance.now();
      expect(delay.sampling).toBe(true);
      while (delay.sampling && performance.now() - started < 20_000) await sleep(50);
      expect(delay.sampling).toBe(false);
      expect(performance.now() - started).toBeGreaterThanOrEqual(990);
      delay.take();
      block(200);
      expect(await seen(delay)).toBe(0);
      delay.wake();
      expect(delay.sampling).toBe(true);
      block(200);
      expect(await seen(delay)).toBeGreaterThan(20);
    } finally {
      delay.stop();
    }
  });

  it('keeps sampling while it is woken more often than once a second', async () => {
    const delay = new EventLoopDelay();
    delay.start();
    try {
      let wokenAt = performance.now();
      const until = wokenAt + 2_500;
      while (performance.now() < until) {
        await sleep(100);
        // A machine that held this timer back past the second lets the sampler rest: fair.
        if (performance.now() - wokenAt < 900) expect(delay.sampling).toBe(true);
        delay.wake();
        wokenAt = performance.now();
      }
      expect(delay.sampling).toBe(true);
    } finally {
      delay.stop();
    }
  });

  it('sees a blocked event loop, and starts a new interval at every take', async () => {
    const delay = new EventLoopDelay();
    delay.start();
    try {
      await sleep(20);
      delay.take();
      const until = performance.now() + 300;
      while (performance.now() < until); // the process is busy: callbacks wait
      // The delayed timer run is recorded by the time the loop turns again.
      let seen = 0;
      for (let i = 0; i < 10 && seen === 0; i++) {
        await sleep(20);
        seen = delay.take();
      }
      expect(seen).toBeGreaterThan(20);
      await sleep(30);
      // The block is not counted again (generous: a loaded machine delays timers too).
      expect(delay.take()).toBeLessThan(300);
    } finally {
      delay.stop();
    }
  });
});
