import { describe, expect, it } from 'vitest';
import { type CpuProfile, summarizeProfile } from './cpu-profile.js';

const frame = (id: number, functionName: string, url: string, lineNumber = 0) => ({
  id,
  callFrame: { functionName, url, lineNumber },
});

describe('summarizeProfile', () => {
  it('splits self time by owner and frame, per request, leaving idle out', () => {
    const profile: CpuProfile = {
      nodes: [
        frame(1, '(root)', ''),
        frame(2, '(idle)', ''),
        frame(3, 'begin', 'file:///repo/packages/core/dist/adapter-kit.js', 155),
        frame(
          4,
          'runRoute',
          'file:///repo/node_modules/.pnpm/fastify@5.6.0/node_modules/fastify/lib/route.js',
          10,
        ),
        frame(
          5,
          'parse',
          'file:///repo/node_modules/.pnpm/pg-protocol@1.0.0/node_modules/pg-protocol/dist/parser.js',
          3,
        ),
        frame(6, 'emit', 'node:events', 500),
        frame(7, '(garbage collector)', ''),
      ],
      // Each sample owns the time until the next one (100 µs apart here).
      samples: [2, 3, 3, 4, 5, 6, 7, 2, 2],
      timeDeltas: [0, 100, 100, 100, 100, 100, 100, 100, 100],
    };
    const summary = summarizeProfile(profile, 2);
    expect(summary.cpuMicros).toBe(300);
    expect(summary.byOwner).toEqual({
      freshgate: 100,
      framework: 50,
      pg: 50,
      'other package': 0,
      node: 50,
      v8: 50,
    });
    expect(summary.top[0]).toEqual({
      frame: 'begin core/dist/adapter-kit.js:156',
      owner: 'freshgate',
      micros: 100,
    });
    expect(summary.top.map((f) => f.frame)).toContain('runRoute fastify/lib/route.js:11');
  });
});
