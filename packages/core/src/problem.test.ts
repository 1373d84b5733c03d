import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  NodeUnavailableError,
  PoolExhaustedError,
  StatementTimeoutError,
} from './errors.js';
import { toProblem } from './problem.js';

describe('toProblem', () => {
  it('answers an exhausted pool with 503 and Retry-After', () => {
    const problem = toProblem(new PoolExhaustedError('primary', { retryAfterSeconds: 2 }));
    expect(problem).toMatchObject({
      status: 503,
      headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '2' },
      body: { status: 503, type: 'https://freshgate.dev/problems/err-freshgate-pool-exhausted' },
    });
  });

  it('answers a statement timeout with 503 and Retry-After', () => {
    const problem = toProblem(new StatementTimeoutError('r1', { cause: new Error('57014') }));
    expect(problem?.status).toBe(503);
    expect(problem?.headers['Retry-After']).toBe('1');
    expect(problem?.body.detail).toContain('r1');
  });

  it('leaves errors without a status code to the framework', () => {
    expect(toProblem(new ConfigError('x', 'bad'))).toBeNull();
    expect(toProblem(new Error('other'))).toBeNull();
  });
});

describe('toProblem for an unavailable node', () => {
  it('answers a connection failure with 503 and Retry-After (regression: it reached clients as a bare 500)', () => {
    const problem = toProblem(
      new NodeUnavailableError('primary', {
        cause: new Error('Connection terminated unexpectedly'),
      }),
    );
    expect(problem).toMatchObject({
      status: 503,
      headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '1' },
      body: { status: 503, type: 'https://freshgate.dev/problems/err-freshgate-node-unavailable' },
    });
  });
});
