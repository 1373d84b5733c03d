import type { TestProject } from 'vitest/node';
import { type Cluster, type ClusterDescriptor, startCluster } from './harness/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared cluster: primary + 2 replicas + Redis, for suites that only read positions. */
    sharedCluster: ClusterDescriptor;
  }
}

let cluster: Cluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  cluster = await startCluster({ replicas: 2, redis: true });
  project.provide('sharedCluster', cluster.describe());
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
