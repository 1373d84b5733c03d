import { describe, expect, it } from 'vitest';
import { EventLoopDelay } from './loop-delay.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('EventLoopDelay', () => {
  it('measures nothing until started, and nothing after it stops', async () => {
    const delay = new EventLoopDelay();
    expect(delay.take()).toBe(0);
    delay.start();
    delay.stop();
    await sleep(30);
    expect(delay.take()).toBe(0);
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
