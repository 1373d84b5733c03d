import type { Cluster } from '@freshgate/harness';
import { Redis } from 'ioredis';
import { startBenchCluster } from './fixture.js';
import { machineInfo } from './machine.js';
import { runOffload } from './offload.js';
import { runOverhead } from './overhead.js';
import type { BenchReport } from './report.js';
import { runScaling } from './scaling.js';
import type { BenchSettings, Section } from './settings.js';

async function serverVersions(cluster: Cluster): Promise<{ postgres: string; redis: string }> {
  const [row] = await cluster.primary.query<{ server_version: string }>('SHOW server_version');
  const redis = new Redis(cluster.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0 });
  redis.on('error', () => {});
  await redis.connect();
  const info = await redis.info('server');
  redis.disconnect();
  return {
    postgres: row?.server_version ?? 'unknown',
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}

/**
 * Runs the chosen sections against a private throwaway cluster (primary + 2 replicas +
 * Redis, started here and stopped at the end) and returns the report data.
 */
export async function runBench(options: {
  settings: BenchSettings;
  sections: readonly Section[];
  mode: BenchReport['mode'];
  command: string;
  /** The commit measured, recorded in the report. */
  commit?: string;
  log?: (message: string) => void;
  /** Called after each section with the report so far, so that a later failure loses less. */
  checkpoint?: (report: BenchReport) => void;
}): Promise<BenchReport> {
  const { settings, sections, log = () => {}, checkpoint = () => {} } = options;
  const started = performance.now();
  const machine = machineInfo();
  log('starting a primary, 2 replicas and Redis');
  const cluster = await startBenchCluster(settings.items);
  try {
    const versions = await serverVersions(cluster);
    const report: BenchReport = {
      machine,
      ...versions,
      mode: options.mode,
      command: options.command,
      totalSeconds: 0,
      commit: options.commit,
    };
    const done = () => {
      report.totalSeconds = (performance.now() - started) / 1000;
      checkpoint(report);
    };
    if (sections.includes('overhead')) {
      report.overhead = await runOverhead(cluster, settings.overhead, log);
      done();
    }
    if (sections.includes('offload')) {
      report.offload = await runOffload(cluster, settings.offload, log);
      done();
    }
    if (sections.includes('scaling')) {
      report.scaling = await runScaling(cluster, settings.scaling, log);
    }
    report.totalSeconds = (performance.now() - started) / 1000;
    return report;
  } finally {
    await cluster.stop();
  }
}
