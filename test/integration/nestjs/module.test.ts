import 'reflect-metadata';
import { memoryPinStore } from '@freshgate/core';
import { FreshDb, FreshgateModule, FreshgateService } from '@freshgate/nestjs';
import type { FreshDataSource } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import {
  Body,
  Controller,
  Get,
  type INestApplication,
  Inject,
  Injectable,
  Module,
  Param,
  Post,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster, waitFor } from '../../harness/index.js';
import { TEST_SECRET, untilHealthy } from '../support.js';
import { PLATFORMS, type Platform, serve } from './platform.js';

// A provider that builds the module's options, as a ConfigService would.
const SETTINGS = Symbol('SETTINGS');
interface Settings {
  primary: string;
  replicas: Record<string, string>;
}

/** Repository code deep in the call graph: an ORM-style pool on the request's routing. */
@Injectable()
class AccountsRepository {
  readonly #pool: RoutedPool;
  constructor(@Inject(FreshgateService) fresh: FreshgateService) {
    this.#pool = new RoutedPool(fresh.gate);
  }

  async transfer(from: string, to: string, amount: number) {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('UPDATE accounts SET balance = balance - $2 WHERE id = $1', [
        from,
        amount,
      ]);
      await client.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [to, amount]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }

  async balance(id: string): Promise<number | undefined> {
    const { rows } = await this.#pool.query('SELECT balance FROM accounts WHERE id = $1', [id]);
    return rows[0]?.balance;
  }

  close() {
    return this.#pool.end();
  }
}

@Controller('accounts')
class AccountsController {
  readonly #accounts: AccountsRepository;
  constructor(@Inject(AccountsRepository) accounts: AccountsRepository) {
    this.#accounts = accounts;
  }

  @Post()
  async open(@Body() body: { ids: string[] }, @FreshDb() db: FreshDataSource) {
    await db.transaction(async (tx) => {
      for (const id of body.ids) await tx.query('INSERT INTO accounts VALUES ($1, 100)', [id]);
    });
    return { lsn: db.freshness.commitLsn };
  }

  @Post('transfer')
  async transfer(@Body() body: { from: string; to: string; amount: number }) {
    await this.#accounts.transfer(body.from, body.to, body.amount);
    return {};
  }

  @Get(':id')
  async balance(@Param('id') id: string) {
    return { balance: (await this.#accounts.balance(id)) ?? null };
  }
}

@Module({
  providers: [
    {
      provide: SETTINGS,
      useFactory: (): Settings => ({ primary: shared.primary, replicas: shared.replicas }),
    },
  ],
  exports: [SETTINGS],
})
class SettingsModule {}

const shared: Settings = { primary: '', replicas: {} };

async function start(platform: Platform): Promise<INestApplication> {
  const module = await Test.createTestingModule({
    imports: [
      FreshgateModule.forRootAsync({
        imports: [SettingsModule],
        inject: [SETTINGS],
        useFactory: (settings: Settings) => ({
          // The module creates this Freshgate, starts it and closes it on shutdown.
          gate: {
            primary: `${settings.primary}?application_name=nest-${platform}`,
            replicas: Object.fromEntries(
              Object.entries(settings.replicas).map(([name, url]) => [
                name,
                `${url}?application_name=nest-${platform}`,
              ]),
            ),
            secret: TEST_SECRET,
            budget: false,
            monitor: { interval: 50 },
            pinStore: memoryPinStore(),
          },
          sessionKey: (req) => req.headers['x-user']?.toString(),
        }),
      }),
    ],
    controllers: [AccountsController],
    providers: [AccountsRepository],
  }).compile();
  return serve(module, platform);
}

/** Connections opened by one app (its pools and its monitor), as the primary sees them. */
async function connectionsOf(cluster: Cluster, platform: Platform): Promise<number> {
  const [row] = await cluster.primary.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
    [`nest-${platform}`],
  );
  return row?.n ?? 0;
}

describe('@freshgate/nestjs against replicas', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query(
      'CREATE TABLE accounts (id text PRIMARY KEY, balance int NOT NULL)',
    );
    await cluster.waitForReplicas();
    shared.primary = cluster.primary.url;
    shared.replicas = { r1: cluster.replica('r1').url };
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  for (const platform of PLATFORMS) {
    describe(platform, () => {
      let app: INestApplication;

      beforeAll(async () => {
        app = await start(platform);
        await untilHealthy(app.get(FreshgateService).gate);
      });

      afterAll(async () => {
        await app.get(AccountsRepository).close();
        await app.close();
      });

      it('a transaction and a routed-pool transaction in handlers: tokens, then reads that see them while the replica lags', async () => {
        const http = supertest(app.getHttpServer());
        const [a, b] = [`a-${platform}`, `b-${platform}`];
        await cluster.replica('r1').pause();
        try {
          const opened = await http
            .post('/accounts')
            .send({ ids: [a, b] })
            .expect(201);
          const token = String(opened.headers['x-freshness-token']);
          expect(opened.body.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
          const read = await http.get(`/accounts/${a}`).set('X-Freshness-Token', token);
          expect(read.body).toEqual({ balance: 100 });
          expect(read.headers['x-freshness-route']).toBe('primary');
          // The ORM-style pool's transaction commits on the primary and issues a token.
          const moved = await http
            .post('/accounts/transfer')
            .set('X-Freshness-Token', token)
            .send({ from: a, to: b, amount: 30 })
            .expect(201);
          expect(moved.headers['x-freshness-route']).toBe('primary');
          const newer = String(moved.headers['x-freshness-token']);
          expect(newer).not.toBe(token);
          const after = await http.get(`/accounts/${b}`).set('X-Freshness-Token', newer);
          expect(after.body).toEqual({ balance: 130 });
          // Without the token, the lagging replica answers: it has not seen the accounts.
          const blind = await http.get(`/accounts/${b}`).expect(200);
          expect(blind.body).toEqual({ balance: null });
          expect(blind.headers['x-freshness-route']).toBe('replica:r1');
        } finally {
          await cluster.replica('r1').resume();
        }
        await cluster.waitForReplicas();
        const caughtUp = await http.get(`/accounts/${b}`).expect(200);
        expect(caughtUp.body).toEqual({ balance: 130 });
        expect(caughtUp.headers['x-freshness-route']).toBe('replica:r1');
      });

      it('a session key pins the session: its next read sees its write without a token', async () => {
        const http = supertest(app.getHttpServer());
        const id = `pinned-${platform}`;
        await cluster.replica('r1').pause();
        try {
          await http
            .post('/accounts')
            .set('X-User', `u-${platform}`)
            .send({ ids: [id] })
            .expect(201);
          const own = await http.get(`/accounts/${id}`).set('X-User', `u-${platform}`).expect(200);
          expect(own.body).toEqual({ balance: 100 });
          expect(own.headers['x-freshness-route']).toBe('primary');
        } finally {
          await cluster.replica('r1').resume();
        }
      });
    });
  }

  it('shutdown closes the Freshgate the module created: no pool connection and no monitor left', async () => {
    for (const platform of PLATFORMS) {
      const app = await start(platform);
      const gate = app.get(FreshgateService).gate;
      await untilHealthy(gate);
      await supertest(app.getHttpServer()).get('/accounts/none').expect(200);
      expect(await connectionsOf(cluster, platform)).toBeGreaterThan(0);
      await app.get(AccountsRepository).close();
      await app.close();
      await waitFor(
        `${platform}: every connection of the app closed`,
        async () => ((await connectionsOf(cluster, platform)) === 0 ? true : undefined),
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      // Nothing reconnects: the monitor stopped with the app.
      await new Promise((r) => setTimeout(r, 300));
      expect(await connectionsOf(cluster, platform)).toBe(0);
    }
  });
});
