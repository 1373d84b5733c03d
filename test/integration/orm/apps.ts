import { fresh, freshgateErrors, freshgate as freshgateExpress } from '@freshgate/express';
import { freshgate as freshgateFastify } from '@freshgate/fastify';
import type { Freshgate } from '@freshgate/pg';
import express from 'express';
import Fastify from 'fastify';

/** What every recipe provides: the same note operations, each through its ORM. */
export interface Notes {
  add(id: string, body: string): Promise<void>;
  find(id: string): Promise<{ id: string; body: string } | null>;
  lock(id: string): Promise<{ id: string; body: string } | null>;
  addAndRead(id: string, body: string): Promise<{ id: string; body: string } | null>;
}

export const FRAMEWORKS = ['express', 'fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export interface OrmApp {
  target: Parameters<typeof import('supertest')>[0];
  close(): Promise<void>;
}

const sessionKey = (headers: Record<string, unknown>) =>
  typeof headers['x-user'] === 'string' ? headers['x-user'] : undefined;

/** The same routes on Express and Fastify; the handlers only call the ORM. */
export async function ormApp(framework: Framework, gate: Freshgate, notes: Notes): Promise<OrmApp> {
  if (framework === 'express') {
    const app = express();
    app.use(express.json());
    // #region express
    app.use(freshgateExpress(gate, { sessionKey: (req) => sessionKey(req.headers) }));
    app.post('/notes', async (req, res) => {
      await notes.add(req.body.id, req.body.body);
      res.status(201).json({});
    });
    // #endregion express
    const find = async (req: express.Request, res: express.Response) => {
      const note = await notes.find(String(req.params.id));
      res.status(note ? 200 : 404).json(note ?? {});
    };
    app.get('/notes/:id', find);
    app.get('/feed/:id', fresh('monotonic'), find);
    app.get('/lock/:id', async (req, res) => {
      res.json(await notes.lock(String(req.params.id)));
    });
    app.post('/tx', async (req, res) => {
      res.status(201).json(await notes.addAndRead(req.body.id, req.body.body));
    });
    app.use(freshgateErrors());
    return { target: app, close: async () => {} };
  }
  const app = Fastify();
  type Id = { Params: { id: string } };
  type Body = { Body: { id: string; body: string } };
  // #region fastify
  await app.register(freshgateFastify, {
    gate,
    sessionKey: (request) => sessionKey(request.headers),
  });
  app.post<Body>('/notes', async (request, reply) => {
    await notes.add(request.body.id, request.body.body);
    return reply.code(201).send({});
  });
  // #endregion fastify
  const find = async (
    request: { params: { id: string } },
    reply: import('fastify').FastifyReply,
  ) => {
    const note = await notes.find(request.params.id);
    return reply.code(note ? 200 : 404).send(note ?? {});
  };
  app.get<Id>('/notes/:id', find);
  app.get<Id>('/feed/:id', { config: { freshness: 'monotonic' } }, find);
  app.get<Id>('/lock/:id', async (request) => notes.lock(request.params.id));
  app.post<Body>('/tx', async (request, reply) =>
    reply.code(201).send(await notes.addAndRead(request.body.id, request.body.body)),
  );
  await app.ready();
  return { target: app.server, close: () => app.close() };
}
