import { connect } from 'node:net';
import { join } from 'node:path';
import { ServerProcess } from './server-process.js';
import { waitFor } from './wait.js';
import type { Workspace } from './workspace.js';

/** Sends one inline command to a Redis server and resolves with its first reply line. */
export function redisCommand(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${port}: no reply to ${command}`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(buffer.slice(0, buffer.indexOf('\r\n')));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** One throwaway redis-server on a loopback port, without persistence. */
export class RedisServer {
  readonly host = '127.0.0.1';
  private readonly process: ServerProcess;

  constructor(
    readonly name: string,
    readonly port: number,
    redisServerPath: string,
    workspace: Workspace,
    extraArgs: string[] = [],
  ) {
    const dir = workspace.subdir(name);
    this.process = new ServerProcess(
      workspace,
      redisServerPath,
      () => [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        ...extraArgs,
      ],
      join(workspace.dir, `${name}.log`),
      'SIGKILL',
    );
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  async start(): Promise<void> {
    this.process.start();
    await waitFor(`redis ${this.name} to answer PING`, async () =>
      (await redisCommand(this.port, 'PING')) === '+PONG' ? true : undefined,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}\n--- ${this.name} log ---\n${this.process.log().slice(-2000)}`,
      );
    });
  }

  /** Stops the server (SIGTERM, no save). */
  async stop(): Promise<void> {
    await this.process.stop('SIGTERM');
  }

  /** Crash: SIGKILL. */
  async kill(): Promise<void> {
    await this.process.stop('SIGKILL');
  }
}
