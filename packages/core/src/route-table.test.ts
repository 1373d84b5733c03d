import { describe, expect, it } from 'vitest';
import { defineContract } from './contract.js';
import { routeTable } from './route-table.js';

describe('routeTable', () => {
  it('lists routes with contract and fallback as JSON rows and a Markdown table', () => {
    const table = routeTable([
      { method: 'GET', path: '/feed', contract: defineContract('monotonic') },
      {
        method: 'GET',
        path: '/dashboard',
        contract: defineContract({ maxLag: '2s', fallback: 'stale' }),
      },
      { method: 'POST', path: '/transfer', contract: defineContract('strong') },
    ]);
    expect(table.routes.map((r) => [r.method, r.path, r.contract, r.fallback])).toEqual([
      ['GET', '/feed', 'monotonic', ['primary']],
      ['GET', '/dashboard', 'maxLag=2000ms', ['stale']],
      ['POST', '/transfer', 'strong', []],
    ]);
    expect(table.markdown.split('\n')).toEqual([
      '| method | path | contract | fallback | tags |',
      '| --- | --- | --- | --- | --- |',
      '| GET | `/feed` | monotonic | primary | — |',
      '| GET | `/dashboard` | maxLag=2000ms | stale | — |',
      '| POST | `/transfer` | strong | — | — |',
    ]);
  });
});
