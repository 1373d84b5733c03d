import 'reflect-metadata';
import { forwardFreshness } from '@freshgate/client';
import {
  Fresh,
  FreshDb,
  type FreshDeclaration,
  FreshgateModule,
  FreshgateService,
} from '@freshgate/nestjs';
import type { FreshDataSource, Freshgate, Queryable } from '@freshgate/pg';
import {
  Body,
  Controller,
  Get,
  type INestApplication,
  Inject,
  NotFoundException,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';

/** The conformance routes as a NestJS controller, the same on both platforms. */
export interface NestConformanceOptions {
  appCookie: string;
  corsExposed: string;
  contracts: Record<'feed' | 'eventual' | 'strong' | 'bounded' | 'guarded', FreshDeclaration>;
  sessionHeader(headers: Record<string, unknown>): string | undefined;
  readNote(db: Queryable, id: string): Promise<{ body: string } | undefined>;
  signUp(
    db: FreshDataSource,
    body: { id: string; user: string },
  ): Promise<{ lsn: string | null; token: string | null }>;
}

type Reply = {
  header?(name: string, value: string): unknown;
  code?(status: number): unknown;
  append?(name: string, value: string): unknown;
  status?(status: number): unknown;
};

// The few lines that differ by platform: appending a cookie and setting a status.
const appendCookie = (res: Reply, cookie: string) =>
  res.append ? res.append('Set-Cookie', cookie) : res.header?.('set-cookie', cookie);
const setStatus = (res: Reply, status: number) =>
  res.code ? res.code(status) : res.status?.(status);

function controllerFor(o: NestConformanceOptions) {
  const { contracts } = o;
  const found = (note: { body: string } | undefined) => {
    if (!note) throw new NotFoundException();
    return note;
  };

  @Controller()
  class NotesController {
    readonly #fresh: FreshgateService;
    constructor(@Inject(FreshgateService) fresh: FreshgateService) {
      this.#fresh = fresh;
    }

    @Post('notes')
    async create(
      @Body() body: { id: string; body: string },
      @FreshDb() db: FreshDataSource,
      @Res({ passthrough: true }) res: Reply,
    ) {
      appendCookie(res, o.appCookie);
      await db.query('INSERT INTO notes VALUES ($1, $2)', [body.id, body.body]);
      return { id: body.id };
    }

    @Post('notes-batch')
    async batch(
      @Body() body: { ids: string[] },
      @FreshDb() db: FreshDataSource,
      @Res({ passthrough: true }) res: Reply,
    ) {
      appendCookie(res, o.appCookie);
      for (const id of body.ids) await db.query('INSERT INTO notes VALUES ($1, $2)', [id, 'batch']);
      return {};
    }

    @Get('notes/:id')
    async note(@Param('id') id: string, @FreshDb() db: FreshDataSource) {
      return found(await o.readNote(db, id));
    }

    // The injectable service: the request's data source from AsyncLocalStorage.
    @Get('feed/:id')
    @Fresh(contracts.feed)
    async feed(@Param('id') id: string) {
      return found(await o.readNote(this.#fresh, id));
    }

    @Get('eventual/:id')
    @Fresh(contracts.eventual)
    async eventual(@Param('id') id: string) {
      return found(await o.readNote(this.#fresh, id));
    }

    @Get('strong/:id')
    @Fresh(contracts.strong)
    async strong(@Param('id') id: string) {
      return found(await o.readNote(this.#fresh, id));
    }

    @Get('bounded')
    @Fresh(contracts.bounded)
    async bounded(@FreshDb() db: FreshDataSource) {
      const { rows } = await db.query('SELECT count(*)::int AS n FROM notes');
      return rows[0];
    }

    @Get('guarded/:id')
    @Fresh(contracts.guarded)
    async guarded(@Param('id') id: string) {
      return found(await o.readNote(this.#fresh, id));
    }

    @Get('slow')
    @Fresh('eventual')
    async slow(@FreshDb() db: FreshDataSource) {
      await db.query('SELECT pg_sleep(0.6)');
      return {};
    }

    @Post('slow-write')
    async slowWrite(@Body() body: { id: string }, @FreshDb() db: FreshDataSource) {
      await db.query('INSERT INTO notes VALUES ($1, $2)', [body.id, 'slow']);
      await db.query('SELECT pg_sleep(0.6)');
      return {};
    }

    @Get('forward')
    async forward(
      @Query('to') to: string,
      @FreshDb() db: FreshDataSource,
      @Res({ passthrough: true }) res: Reply,
    ) {
      const downstream = await fetch(to, { headers: forwardFreshness(db) });
      setStatus(res, downstream.status);
      return downstream.json();
    }

    @Post('signup')
    async signup(@Body() body: { id: string; user: string }, @FreshDb() db: FreshDataSource) {
      return o.signUp(db, body);
    }
  }
  return NotesController;
}

/** A Nest app on `platform` serving the conformance routes over `engine`. */
export async function nestApp(
  platform: 'express' | 'fastify',
  engine: Freshgate,
  o: NestConformanceOptions,
): Promise<{ app: INestApplication; service: FreshgateService }> {
  const module = await Test.createTestingModule({
    imports: [
      FreshgateModule.forRoot({ gate: engine, sessionKey: (req) => o.sessionHeader(req.headers) }),
    ],
    controllers: [controllerFor(o)],
  }).compile();
  const cors = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': o.corsExposed,
  };
  let app: INestApplication;
  if (platform === 'express') {
    const express = module.createNestApplication<NestExpressApplication>(new ExpressAdapter(), {
      logger: false,
    });
    express.set('trust proxy', true);
    // The application's own CORS setup, which freshgate must extend, not replace.
    express.use(
      (_req: unknown, res: { setHeader(n: string, v: string): void }, next: () => void) => {
        for (const [name, value] of Object.entries(cors)) res.setHeader(name, value);
        next();
      },
    );
    app = express;
  } else {
    const fastify = module.createNestApplication<NestFastifyApplication>(
      new FastifyAdapter({ trustProxy: true }),
      { logger: false },
    );
    fastify
      .getHttpAdapter()
      .getInstance()
      .addHook('onRequest', async (_request, reply) => {
        reply.headers(cors);
      });
    app = fastify;
  }
  await app.init();
  if (platform === 'fastify')
    await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return { app, service: app.get(FreshgateService) };
}

/** Boots a Nest app whose route declares a contract with a typo; must throw at boot. */
export async function bootNestTypo(engine: Freshgate): Promise<void> {
  @Controller()
  class TypoController {
    @Get('typo')
    @Fresh('monotonc' as never)
    typo() {
      return {};
    }
  }
  const module = await Test.createTestingModule({
    imports: [FreshgateModule.forRoot({ gate: engine })],
    controllers: [TypoController],
  }).compile();
  const app = module.createNestApplication(new ExpressAdapter(), { logger: false });
  try {
    await app.init();
  } finally {
    await app.close();
  }
}
