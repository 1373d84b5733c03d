/** The parts of a V8 `.cpuprofile` (Profiler.stop) that the summary reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples?: number[];
  timeDeltas?: number[];
}

/** Who a frame belongs to. */
export type FrameOwner = 'freshgate' | 'framework' | 'pg' | 'other package' | 'node' | 'v8';

/** Self time of one frame (a function at a place), per request. */
export interface FrameCost {
  /** `name file:line`, the file relative to its package (`core/dist/engine.js:120`). */
  frame: string;
  owner: FrameOwner;
  micros: number;
}

/** What one profiled run cost the server's CPU, per request. */
export interface ProfileSummary {
  requests: number;
  /** CPU time sampled (idle excluded), µs per request. */
  cpuMicros: number;
  /** Self time by owner, µs per request. */
  byOwner: Record<FrameOwner, number>;
  /** The costliest frames, most first. */
  top: FrameCost[];
}

const FRAMEWORK_PACKAGES = [
  'fastify',
  'express',
  'find-my-way',
  'avvio',
  'light-my-request',
  'router',
  'body-parser',
  'send',
  'finalhandler',
  'on-finished',
  'fast-json-stringify',
  'content-type',
  'proxy-addr',
  'qs',
];

function ownerOf(url: string, name: string): { owner: FrameOwner; file: string } {
  const own = /\/packages\/([^/]+)\/(dist|src)\/(.+)$/.exec(url);
  if (own) return { owner: 'freshgate', file: `${own[1]}/${own[2]}/${own[3]}` };
  const module = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\/(.+)$/.exec(url);
  if (module) {
    const pkg = module[1] as string;
    const owner: FrameOwner =
      pkg.startsWith('@fastify/') || FRAMEWORK_PACKAGES.includes(pkg)
        ? 'framework'
        : pkg === 'pg' || pkg.startsWith('pg-')
          ? 'pg'
          : 'other package';
    return { owner, file: `${pkg}/${module[2]}` };
  }
  if (url.startsWith('node:')) return { owner: 'node', file: url };
  // (garbage collector), (program) and native builtins (no url).
  return { owner: url === '' && !name.startsWith('(') ? 'node' : 'v8', file: url };
}

/**
 * Self time per frame of a CPU profile, in µs per request of the run it covers. Idle time is
 * left out, so `cpuMicros` is the CPU the process spent per request while it was profiled.
 *
 * @example
 * ```ts
 * const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), 120_000);
 * ```
 */
export function summarizeProfile(profile: CpuProfile, requests: number, top = 10): ProfileSummary {
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const selfMicros = new Map<number, number>();
  // timeDeltas[i] is the time before sample i: the time until the next sample belongs to it.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    const delta = deltas[i + 1] ?? 0;
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + Math.max(0, delta));
  }
  const byOwner: Record<FrameOwner, number> = {
    freshgate: 0,
    framework: 0,
    pg: 0,
    'other package': 0,
    node: 0,
    v8: 0,
  };
  const byFrame = new Map<string, FrameCost>();
  let cpu = 0;
  for (const node of profile.nodes) {
    const micros = selfMicros.get(node.id);
    if (micros === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    const { owner, file } = ownerOf(url, functionName);
    const perRequest = micros / Math.max(1, requests);
    cpu += perRequest;
    byOwner[owner] += perRequest;
    const name = functionName || '(anonymous)';
    const frame = file ? `${name} ${file}:${lineNumber + 1}` : name;
    const known = byFrame.get(frame);
    if (known) known.micros += perRequest;
    else byFrame.set(frame, { frame, owner, micros: perRequest });
  }
  return {
    requests,
    cpuMicros: cpu,
    byOwner,
    top: [...byFrame.values()].sort((a, b) => b.micros - a.micros).slice(0, top),
  };
}
