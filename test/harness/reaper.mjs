// Watches the process that started a harness workspace. When that process is gone — whether it
// stopped cleanly, crashed or was killed with SIGKILL — every server it registered is stopped
// and the workspace directory is removed. Runs detached, in its own process group, so that a
// signal sent to the test run's group does not take it down before it has cleaned up.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [, , parentPidText, dir] = process.argv;
const parentPid = Number(parentPidText);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function registered() {
  try {
    return readFileSync(join(dir, 'pids'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [pid, signal] = line.split(' ');
        return { pid: Number(pid), signal: signal || 'SIGKILL' };
      });
  } catch {
    return [];
  }
}

async function cleanUp() {
  const servers = registered().filter((s) => alive(s.pid));
  for (const s of servers) {
    try {
      process.kill(s.pid, s.signal);
    } catch {}
  }
  const deadline = Date.now() + 5000;
  while (servers.some((s) => alive(s.pid)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const s of servers) {
    try {
      if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
    } catch {}
  }
  // PostgreSQL backends leave shortly after their postmaster; give them a moment.
  await new Promise((r) => setTimeout(r, 200));
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

process.on('SIGTERM', cleanUp);
const timer = setInterval(() => {
  if (!alive(parentPid)) {
    clearInterval(timer);
    cleanUp();
  }
}, 100);
