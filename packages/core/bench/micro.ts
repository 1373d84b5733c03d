/**
 * Micro-benchmark of the per-request hot path. Not a test: prints µs per operation.
 *
 *   pnpm --filter @freshgate/core exec tsx bench/micro.ts
 */
import { cpus } from 'node:os';
// Internals are measured here, so they come from their modules rather than the public entry points.
import { PrimaryBudget } from '../src/budget.js';
import { defineContract } from '../src/contract.js';
import { type DecideContext, decide, routeRequest } from '../src/decide.js';
import { createEngine } from '../src/engine.js';
import { memoryPinStore } from '../src/pin-store.js';
import { createTokenCodec } from '../src/token-codec.js';
import { Topology } from '../src/topology.js';

const SECRET = 'benchmark-secret-of-at-least-32-bytes!!';
const CID = '7301234567890123456/1';

async function measure(
  name: string,
  iterations: number,
  run: (i: number) => unknown,
): Promise<void> {
  const warmup = Math.min(iterations, 2_000);
  for (let i = 0; i < warmup; i++) await run(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await run(i);
  const ns = Number(process.hrtime.bigint() - start);
  console.log(
    `${name.padEnd(52)} ${(ns / iterations / 1000).toFixed(3).padStart(9)} µs/op  (${iterations} ops)`,
  );
}

function measureSync(name: string, iterations: number, run: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(iterations, 10_000); i++) run(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) run(i);
  const ns = Number(process.hrtime.bigint() - start);
  console.log(
    `${name.padEnd(52)} ${(ns / iterations / 1000).toFixed(3).padStart(9)} µs/op  (${iterations} ops)`,
  );
}

const topology = new Topology({ replicas: ['r1', 'r2', 'r3', 'r4'].map((name) => ({ name })) });
topology.updatePrimary({ currentLsn: 10_000n, clusterId: CID, health: 'healthy' });
for (const [i, r] of topology.replicas.entries()) {
  topology.updateReplica(r.name, {
    replayLsn: 9_000n + BigInt(i * 300),
    lagMs: 40 - i * 5,
    clusterId: CID,
    health: 'healthy',
  });
}

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'} × ${cpus().length}`);

const ctx: DecideContext = {
  topology,
  budget: new PrimaryBudget({ rate: Number.POSITIVE_INFINITY }),
  selection: 'least-lag',
  cursor: { next: 0 },
};
const ryw = routeRequest(defineContract('read-your-writes'), { requiredLsn: 9_500n });
const eventual = routeRequest(defineContract('eventual'));
const bounded = routeRequest(defineContract({ maxLag: '1s' }), { requiredLsn: 9_500n });
measureSync('decide() read-your-writes, 4 replicas', 1_000_000, () => decide(ryw, ctx));
measureSync('decide() eventual, 4 replicas', 1_000_000, () => decide(eventual, ctx));
measureSync('decide() maxLag, 4 replicas', 1_000_000, () => decide(bounded, ctx));

const codec = await createTokenCodec({ secret: SECRET });
const cold = await createTokenCodec({ secret: SECRET, cacheSize: 0 });
const tokens = await Promise.all(
  Array.from({ length: 100 }, (_, i) => codec.sign({ lsn: BigInt(i), cid: CID })),
);
await measure('sign (HS256)', 20_000, () =>
  codec.sign({ lsn: 1234n, cid: CID, sid: 'abcdefghijklmnopqrstuv' }),
);
await measure('verify cold (HS256, no cache)', 20_000, (i) =>
  cold.verify(tokens[i % 100]?.token, { cid: CID }),
);
await measure('verify cached (HS256)', 1_000_000, (i) =>
  codec.verify(tokens[i % 100]?.token, { cid: CID }),
);
measureSync('verifyCached (sync)', 1_000_000, (i) =>
  codec.verifyCached(tokens[i % 100]?.token as string, { cid: CID }),
);
// A request parser gives each request a string of its own, whose hash V8 has not computed yet.
const arrived = Array.from({ length: 200_000 }, (_, i) =>
  Buffer.from(tokens[i % 100]?.token as string).toString(),
);
measureSync('verifyCached (sync), token string as parsed', 200_000, (i) =>
  codec.verifyCached(arrived[i] as string, { cid: CID }),
);
measureSync('verifyNow cold (HS256, no cache, sync)', 100_000, (i) =>
  cold.verifyNow(tokens[i % 100]?.token as string, { cid: CID }),
);

const engine = await createEngine({ topology, secret: SECRET });
const { token } = await engine.codec.sign({ lsn: 9_500n, cid: CID });
await measure('engine.begin(token cached) + route()', 300_000, async () => {
  const f = await engine.begin({ contract: 'read-your-writes', token });
  return f.route();
});
const withPins = await createEngine({ topology, secret: SECRET, pinStore: memoryPinStore() });
await measure('engine.begin(token + memory pin) + route()', 300_000, async (i) => {
  const f = await withPins.begin({
    contract: 'read-your-writes',
    token,
    sessionKey: `s${i % 1000}`,
  });
  return f.route();
});
