import 'reflect-metadata';
import { ConfigError } from '@freshgate/core';
import { createFreshgate, type FreshDataSource, type Freshgate } from '@freshgate/pg';
import { Controller, Get, Inject, Injectable, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fresh, FreshDb } from './fresh.js';
import { FreshgateModule, FreshgateService } from './module.js';

// No database is reached: the Freshgate is never started, and no route runs a statement.
let gate: Freshgate;

beforeAll(async () => {
  gate = await createFreshgate({
    primary: 'postgres://127.0.0.1:1/none',
    replicas: { r1: 'postgres://127.0.0.1:1/none' },
    secret: 'nestjs-unit-test-secret-long-enough!!',
  });
});

afterAll(async () => {
  await gate?.close();
});

@Injectable()
class Repository {
  constructor(@Inject(FreshgateService) readonly fresh: FreshgateService) {}
}

@Controller('cases')
@Fresh('monotonic')
class CasesController {
  @Get()
  list(@FreshDb() db: FreshDataSource) {
    return { contract: db.freshness.contract.level };
  }

  @Get(':id')
  @Fresh({ maxLag: '2s', fallback: 'stale' })
  find() {
    return {};
  }

  @Post()
  create() {
    return {};
  }

  @Get('health')
  @Fresh(false)
  health() {
    return { ok: true };
  }
}

@Controller('plain')
class PlainController {
  @Get()
  read() {
    return {};
  }
}

async function boot(controllers: (new (...args: never[]) => unknown)[]) {
  const module = await Test.createTestingModule({
    imports: [FreshgateModule.forRoot({ gate })],
    controllers,
    providers: [Repository],
  }).compile();
  const app = module.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('FreshgateModule', () => {
  it('lists every route with its contract: method over class over the default; @Fresh(false) left out', async () => {
    const app = await boot([CasesController, PlainController]);
    try {
      const routes = app.get(FreshgateService).routeTable().routes;
      expect(routes.map((r) => [r.method, r.path, r.contract])).toEqual([
        ['GET', '/cases', 'monotonic'],
        ['GET', '/cases/:id', 'maxLag=2000ms'],
        ['POST', '/cases', 'monotonic'],
        ['GET', '/plain', 'read-your-writes'],
      ]);
      expect(app.get(Repository).fresh.gate).toBe(gate);
    } finally {
      await app.close();
    }
  });

  it('fails at boot on a contract typo, naming the route', async () => {
    @Controller('typo')
    class TypoController {
      @Get(':id')
      @Fresh('monotonc' as never)
      find() {
        return {};
      }
    }
    const failure = await boot([TypoController]).then(
      (app) => app.close().then(() => null),
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as Error).message).toMatch(/GET \/typo\/:id \(TypoController\.find\)/);
    expect((failure as Error).message).toMatch(/Did you mean "monotonic"/);
  });

  it('refuses unknown options and a missing gate when the module is declared', () => {
    expect(() => FreshgateModule.forRoot({ gate, sesionKey: () => 'x' } as never)).toThrow(
      /sesionKey/,
    );
    expect(() => FreshgateModule.forRoot({} as never)).toThrow(/gate/);
  });

  it('@FreshDb() finds the data source of a gate whose request context currentDb() does not see', async () => {
    // A gate whose started requests run their handler outside @freshgate/pg's request context.
    const db = { freshness: { contract: { level: 'from-the-gate' } } };
    const host = Object.assign(Object.create(gate) as Freshgate, {
      begin: () => ({ freshness: db.freshness, db, run: <T>(fn: () => T) => fn() }),
    });
    const module = await Test.createTestingModule({
      imports: [FreshgateModule.forRoot({ gate: host as never })],
      controllers: [CasesController],
    }).compile();
    const app = module.createNestApplication({ logger: false });
    await app.init();
    try {
      for (let i = 0; i < 2; i++) {
        const res = await request(app.getHttpServer()).get('/cases').expect(200);
        expect(res.body).toEqual({ contract: 'from-the-gate' });
      }
    } finally {
      await app.close();
    }
  });

  it('the service throws outside a request', async () => {
    const app = await boot([PlainController]);
    try {
      expect(() => app.get(FreshgateService).db).toThrow(/outside a request/);
    } finally {
      await app.close();
    }
  });
});
