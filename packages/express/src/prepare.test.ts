import { createTestHost } from '@freshgate/core/testing';
import express from 'express';
import { expect, it } from 'vitest';
import { freshgate } from './index.js';

// A file of its own: Express' request prototype is shared by every test of a file.
it("puts req.db and req.freshness on Express' request prototype when freshgate() is made, before any request", async () => {
  const host = await createTestHost();
  expect(() => freshgate({} as never)).toThrow(/`gate`/);
  // A freshgate() that fails leaves the prototype alone.
  expect(Object.hasOwn(express.request, 'db')).toBe(false);
  freshgate(host as never);
  for (const name of ['db', 'freshness']) {
    expect(Object.getOwnPropertyDescriptor(express.request, name)?.get).toBeTypeOf('function');
  }
  // A request that freshgate does not serve reads neither.
  const req = Object.create(express.request) as express.Request;
  expect(req.db).toBeUndefined();
  expect(req.freshness).toBeUndefined();
});
