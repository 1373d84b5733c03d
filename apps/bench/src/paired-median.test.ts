import { describe, expect, it } from 'vitest';
import { pairedMedian } from './overhead.js';

describe('pairedMedian', () => {
  it("pairs each round's measurements and takes the median of the differences", () => {
    // A slow second round moves both: its difference still counts as 10.
    expect(pairedMedian([110, 210, 120], [100, 200, 100])).toBe(10);
    expect(pairedMedian([5, 7], [1, 1, 1])).toBe(5);
    expect(pairedMedian([], [1])).toBeUndefined();
  });
});
