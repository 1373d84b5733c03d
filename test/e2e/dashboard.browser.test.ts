import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { type CasebookProcess, startCasebook } from './casebook-process.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-results/', import.meta.url).pathname;

describe('the casebook dashboard in headless Chromium', () => {
  let cluster: Cluster;
  let app: CasebookProcess;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium was not found at ${CHROMIUM}. Install it with: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    }
    cluster = await startCluster({ replicas: 2 });
    app = await startCasebook(cluster, { FRESHGATE_FRAMEWORK: 'fastify', CASEBOOK_LAB: '1' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    await cluster?.stop();
  });

  const lab = (path: string, body: unknown) =>
    fetch(`${app.url}/api/lab/replicas/r1/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('opened after a lag episode, charts the episode from the server and shows the applied delay', async () => {
    // The episode happens before any page is open: r1 replays 1.5 s late while cases are
    // written through the API.
    expect((await lab('delay', { ms: 1_500 })).status).toBe(200);
    for (let i = 0; i < 8; i++) {
      const created = await fetch(`${app.url}/api/cases`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user': 'grace' },
        body: JSON.stringify({ title: `lagged case ${i}` }),
      });
      expect(created.status).toBe(201);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const openedAt = Date.now();

    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(app.url);
    const r1 = page.locator('#nodes tr[data-replica="r1"]');
    // The lab input reads the delay back from the replica, not the page's default 0.
    await expect
      .poll(() => r1.locator('input[type="number"]').inputValue(), { timeout: 10_000 })
      .toBe('1500');
    await expect(r1.locator('.lab-state').getAttribute('data-delay-ms')).resolves.toBe('1500');
    // The chart's first drawing already holds the episode: lagging points from before the
    // page was opened.
    const drawn = async () => {
      const data = await page.locator('#chart').getAttribute('data-drawn');
      return data
        ? (JSON.parse(data) as Record<
            string,
            { nonZero: number; oldestNonZeroAgoMs: number | null }
          >)
        : undefined;
    };
    await expect
      .poll(async () => (await drawn())?.r1?.nonZero ?? 0, { timeout: 10_000 })
      .toBeGreaterThan(0);
    const r1Drawn = (await drawn())!.r1!;
    expect(r1Drawn.oldestNonZeroAgoMs).toBeGreaterThan(Date.now() - openedAt);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-lag-episode.png` });

    // The page polls every 500 ms; someone typing in the delay input keeps the focus and
    // what they typed across polls.
    const input = r1.locator('input[type="number"]');
    await input.focus();
    await page.waitForTimeout(1_200);
    await expect(r1.locator('input[type="number"]:focus').count()).resolves.toBe(1);
    await input.fill('0');
    await page.waitForTimeout(1_200);
    await expect(input.inputValue()).resolves.toBe('0');
    const [applied] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/lab/replicas/r1/delay'), {
        timeout: 30_000,
      }),
      r1.locator('button[data-action="delay"]').click(),
    ]);
    expect(applied.status(), await applied.text()).toBeLessThan(300);
    expect(applied.request().postDataJSON()).toEqual({ ms: 0 });
    const appliedDelay = async () => {
      const [row] = await cluster
        .replica('r1')
        .query<{ setting: string }>(
          "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
        );
      return row?.setting;
    };
    await expect.poll(appliedDelay, { timeout: 10_000 }).toBe('0');
    await expect
      .poll(() => r1.locator('.lab-state').getAttribute('data-delay-ms'), { timeout: 10_000 })
      .toBe('0');
    await page.close();
    expect(errors).toEqual([]);
  });

  it('pauses a replica from the page, runs the journey around it, and shows the lag fall after resume', async () => {
    // Whatever the test before left, r1 starts without an apply delay.
    expect((await lab('delay', { ms: 0 })).status).toBe(200);
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(app.url);
    const r1 = page.locator('#nodes tr[data-replica="r1"]');
    await r1.locator('.badge.healthy').first().waitFor({ timeout: 15_000 });

    await r1.locator('button[data-action="pause"]').click();
    await expect.poll(() => cluster.replica('r1').pauseState(), { timeout: 10_000 }).toBe('paused');

    await page.fill('#user', 'ada');
    await page.fill('#title', 'Bicycle stolen from the station');
    await page.click('#journey button[type="submit"]');
    await page.locator('#steps[data-done="true"]').waitFor({ timeout: 15_000 });
    const steps = await page.locator('#steps li').evaluateAll((items) =>
      items.map((li) => ({
        step: li.getAttribute('data-step'),
        route: li.getAttribute('data-route'),
        text: li.textContent,
      })),
    );
    expect(steps.map((s) => s.step)).toEqual([
      'create',
      'read the case',
      'list my cases',
      'dashboard counts',
    ]);
    expect(steps[0]!.route).toBe('primary');
    // The paused replica has not replayed the new case: the read comes from the primary or
    // from the replica that caught up, never from r1.
    expect(steps[1]!.route).toMatch(/^(primary|replica:r2)$/);
    expect(steps[1]!.text).toMatch(/^read the case: 200/);

    // The write after the pause makes r1's lag grow…
    const lagOf = async () => {
      const text = (await r1.locator('td.lag').textContent()) ?? '';
      return Number.parseInt(text, 10);
    };
    await expect.poll(lagOf, { timeout: 10_000 }).toBeGreaterThan(500);
    const peak = await lagOf();
    // The read-after-write probe, beside the LSN lag, waits for r1 to show its write.
    const probeOf = async () => (await r1.locator('td.probe').textContent()) ?? '';
    await expect.poll(probeOf, { timeout: 10_000 }).toMatch(/^waiting \d+ ms$/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-paused.png` });

    // …and fall back after resume.
    await r1.locator('button[data-action="resume"]').click();
    await expect.poll(lagOf, { timeout: 10_000 }).toBeLessThan(peak);
    await expect.poll(lagOf, { timeout: 10_000 }).toBe(0);
    await expect.poll(probeOf, { timeout: 10_000 }).toMatch(/^\d+ ms$/);
    await page.waitForTimeout(1_000); // let the chart draw a few points after the resume
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
});
