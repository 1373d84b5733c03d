import 'reflect-metadata';
import { FreshDb, FreshgateModule, FreshgateService } from '@freshgate/nestjs';
import type { FreshDataSource } from '@freshgate/pg';
import { Controller, Get, type INestApplication, Inject } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { TEST_SECRET, untilHealthy } from '../support.js';
import { PLATFORMS, serve } from './platform.js';

@Controller('ctx')
class ContextController {
  constructor(@Inject(FreshgateService) readonly fresh: FreshgateService) {}

  @Get('fresh-db')
  async viaFreshDb(@FreshDb() db: FreshDataSource) {
    const { rows } = await db.query('SELECT 1 AS one');
    return rows[0];
  }

  @Get('service')
  viaService() {
    try {
      return { db: typeof this.fresh.db };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }
}

describe('@freshgate/nestjs with a gate created with asyncContext: false', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.waitForReplicas();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  for (const platform of PLATFORMS) {
    describe(platform, () => {
      let app: INestApplication;

      beforeAll(async () => {
        const module = await Test.createTestingModule({
          imports: [
            FreshgateModule.forRoot({
              gate: {
                primary: cluster.primary.url,
                replicas: { r1: cluster.replica('r1').url },
                secret: TEST_SECRET,
                budget: false,
                monitor: { interval: 50 },
                asyncContext: false,
              },
            }),
          ],
          controllers: [ContextController],
        }).compile();
        app = await serve(module, platform);
        await untilHealthy(app.get(FreshgateService).gate);
      });

      afterAll(async () => {
        await app?.close();
      });

      it('@FreshDb() still gets the request data source, routed; FreshgateService.db says why it has none', async () => {
        const http = supertest(app.getHttpServer());
        expect(app.get(FreshgateService).gate.asyncContext).toBe(false);
        for (let i = 0; i < 2; i++) {
          const res = await http.get('/ctx/fresh-db').expect(200);
          expect(res.body).toEqual({ one: 1 });
          expect(res.headers['x-freshness-route']).toBe('replica:r1');
        }
        const service = await http.get('/ctx/service').expect(200);
        expect(service.body.error).toMatch(/asyncContext: false/);
      });
    });
  }
});
