import { describe, expect, it } from 'vitest';
import { HistoryChecker } from './history-checker.js';

describe('HistoryChecker', () => {
  it('accepts a history where every read sees at least what the session knew', () => {
    const h = new HistoryChecker();
    h.write('ada', 'k', 1, 10);
    h.read('ada', 'k', 1, 11, 12);
    h.read('ada', 'k', 2, 13, 14); // another session's newer write: fine
    h.read('bob', 'k', 0, 15, 16); // bob never saw k
    expect(h.report()).toMatchObject({
      writes: 1,
      reads: 3,
      readYourWritesViolations: 0,
      monotonicViolations: 0,
    });
  });

  it('flags a read that starts after the acknowledged write and misses it', () => {
    const h = new HistoryChecker();
    h.write('ada', 'k', 3, 10);
    h.read('ada', 'k', 2, 11, 12, 'replica:r1');
    const report = h.report();
    expect(report.readYourWritesViolations).toBe(1);
    expect(report.examples[0]).toEqual({
      kind: 'read-your-writes',
      session: 'ada',
      key: 'k',
      saw: 2,
      expected: 3,
      route: 'replica:r1',
    });
  });

  it('does not blame a read that overlapped the write', () => {
    const h = new HistoryChecker();
    h.write('ada', 'k', 1, 10);
    h.read('ada', 'k', 0, 9, 11);
    expect(h.report().readYourWritesViolations).toBe(0);
  });

  it('flags time going backwards across reads, whatever order events are recorded in', () => {
    const h = new HistoryChecker();
    h.read('ada', 'k', 4, 30, 31);
    h.read('ada', 'k', 5, 10, 20);
    expect(h.report()).toMatchObject({ monotonicViolations: 1, readYourWritesViolations: 0 });
  });

  it('treats keys and sessions separately', () => {
    const h = new HistoryChecker();
    h.read('ada', 'a', 5, 1, 2);
    h.read('ada', 'b', 1, 3, 4);
    h.read('bob', 'a', 1, 5, 6);
    expect(h.report().monotonicViolations).toBe(0);
  });

  it('checks a read that does not raise what the session knew, and does not count what it saw', () => {
    const h = new HistoryChecker();
    h.write('ada', 'k', 3, 10);
    // Version 4 came from a write whose outcome ada never learnt, read under read-your-writes.
    h.read('ada', 'k', 4, 11, 12, undefined, { raises: false });
    h.read('ada', 'k', 3, 13, 14, undefined, { raises: false });
    expect(h.report()).toMatchObject({ monotonicViolations: 0, readYourWritesViolations: 0 });
    h.read('ada', 'k', 2, 15, 16, undefined, { raises: false });
    expect(h.report().readYourWritesViolations).toBe(1);
    // A read that raises (monotonic) is remembered by the reads after it, of either kind.
    h.read('ada', 'k', 5, 17, 18);
    h.read('ada', 'k', 4, 19, 20, undefined, { raises: false });
    expect(h.report().monotonicViolations).toBe(1);
  });
});
