import { NodeUnavailableError, StatementTimeoutError, toProblem } from '@freshgate/core';
import { describe, expect, it } from 'vitest';
import { isConnectionError, isReadOnlyError, toNodeError } from './connection-errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('connection errors', () => {
  it('classifies network, shutdown and connection-class failures as connection errors', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'EPIPE',
      '57P01',
      '57P02',
      '57P03',
      '08006',
      '08001',
    ])
      expect(isConnectionError(withCode(code)), code).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(
      isConnectionError(
        new Error('Client has encountered a connection error and is not queryable'),
      ),
    ).toBe(true);
    expect(isConnectionError(new NodeUnavailableError('r1'))).toBe(true);
  });

  it('leaves a statement’s own errors alone', () => {
    expect(isConnectionError(withCode('42P01', 'relation "x" does not exist'))).toBe(false);
    expect(isConnectionError(withCode('23505'))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });

  it('maps a connection failure to a 503 with Retry-After (regression: "Connection terminated unexpectedly" answered 500)', () => {
    const error = toNodeError(new Error('Connection terminated unexpectedly'), 'primary');
    expect(error).toBeInstanceOf(NodeUnavailableError);
    expect(toProblem(error)).toMatchObject({
      status: 503,
      headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '1' },
    });
  });

  it('treats a read-only refusal as the primary being unavailable (a demoted primary), only on the primary', () => {
    const readOnly = withCode('25006', 'cannot execute INSERT in a read-only transaction');
    expect(isReadOnlyError(readOnly)).toBe(true);
    expect(toNodeError(readOnly, 'primary')).toBeInstanceOf(NodeUnavailableError);
    expect(toNodeError(readOnly, 'r1')).toBe(readOnly);
  });

  it('passes freshgate errors and statement errors through unchanged', () => {
    const timeout = new StatementTimeoutError('r1');
    expect(toNodeError(timeout, 'r1')).toBe(timeout);
    const syntax = withCode('42601');
    expect(toNodeError(syntax, 'primary')).toBe(syntax);
  });
});
