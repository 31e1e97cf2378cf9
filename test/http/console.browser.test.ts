// The operator console in a real browser: Debian's Chromium driven by playwright-core.
// Under CI=true these tests always run (and fail if /usr/bin/chromium is missing); elsewhere
// they are skipped, loudly, when it is not installed.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Instance } from '../../src/index.js';
import { controllerWith, sleep, stepsHandler, untilState } from '../support.js';
import { ALICE, OPS, serve, type Served } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const CI = process.env.CI === 'true';
const present = existsSync(CHROMIUM);
if (!present && !CI) {
  console.warn(
    `\n${'!'.repeat(78)}\n!! SKIPPING the console browser tests: ${CHROMIUM} is not installed.\n` +
      `!! Install it with: apt-get install -y chromium   (under CI=true these tests fail instead)\n${'!'.repeat(78)}\n`,
  );
}

describe.skipIf(!present && !CI)('operator console in Chromium', () => {
  let context: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is required under CI=true but ${CHROMIUM} is missing (apt-get install -y chromium)`);
    profile = mkdtempSync(join(tmpdir(), 'taskctl-console-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1360, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** A new tab (its own sessionStorage), signed in through the sign-in page with `key`. */
  async function signIn(s: Served, key: string, hash = ''): Promise<Page> {
    const page = await context.newPage();
    const response = await page.goto(`${s.base}/${hash}`);
    expect(response?.status()).toBe(401); // the sign-in shell: no data before the key
    await page.fill('#key', key);
    await page.click('button[type=submit]');
    await page.waitForSelector('#live.on');
    return page;
  }
  const badge = (id: string, state: string) => `table.instances tr[data-id="${id}"] .badge[data-state="${state}"]`;

  it('pauses a running instance from the page, its badge turns paused live, then resumes it', async () => {
    const { controller } = controllerWith({ 'etl-load': stepsHandler(100_000, 5) });
    controller.define({ id: 'etl-load', group: 'etl' });
    await controller.start();
    const job = await controller.submit('etl-load', { params: { rows: 10 } });
    await untilState(controller, job.id, 'running');
    const s = await serve(controller);
    const page = await signIn(s, OPS);
    await page.waitForSelector(badge(job.id, 'running'));
    const listLoads: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/instances')) listLoads.push(r.url());
    });

    await page.check(`tr[data-id="${job.id}"] input[type=checkbox]`);
    await page.click('.batch button[data-action=pause]');
    // the confirmation first shows the dry-run impact: this instance, running -> pausing
    const impactRow = page.locator(`dialog[data-action=pause] .impact tr[data-id="${job.id}"]`);
    await impactRow.waitFor();
    expect(await impactRow.locator('.badge').allTextContents()).toEqual(['running', 'pausing']);
    expect(await page.textContent('dialog[data-action=pause] [data-stat=changes]')).toContain('1');
    expect((await controller.get(job.id))!.state).toBe('running'); // the preview changed nothing
    await page.fill('dialog[data-action=pause] input[name=reason]', 'database maintenance');
    await page.click('dialog[data-action=pause] button[data-confirm=pause]');

    await page.waitForSelector(badge(job.id, 'paused'), { timeout: 5000 });
    expect(listLoads).toEqual([]); // live over the event stream, not by reloading the list
    expect((await controller.get(job.id))!.state).toBe('paused');
    const [command] = await controller.audit({ instanceId: job.id, kind: 'command' });
    expect(command).toMatchObject({ actor: 'ops-bot', action: 'pause', reason: 'database maintenance' });

    await page.check(`tr[data-id="${job.id}"] input[type=checkbox]`);
    await page.click('.batch button[data-action=resume]');
    await page.waitForSelector(`dialog[data-action=resume] .impact tr[data-id="${job.id}"]`);
    expect(await page.locator(`dialog[data-action=resume] .impact tr[data-id="${job.id}"] .badge`).allTextContents()).toEqual(['paused', 'queued']);
    await page.click('dialog[data-action=resume] button[data-confirm=resume]');
    await page.waitForSelector(badge(job.id, 'running'), { timeout: 5000 });
    expect(listLoads).toEqual([]);
    await page.close();
  });

  it('previews a backfill, starts it, and its progress bar moves', async () => {
    const { controller } = controllerWith({
      daily: async (ctx) => {
        await sleep(60, ctx.signal);
        return 'ok';
      },
    });
    controller.define({ id: 'daily', group: 'etl', schedule: { every: 'P1D' } });
    await controller.start();
    const s = await serve(controller);
    const page = await signIn(s, OPS, '#/backfills');
    await page.fill('input[name=taskId]', 'daily');
    await page.fill('input[name=from]', '2024-01-01T00:00:00Z');
    await page.fill('input[name=to]', '2024-01-20T00:00:00Z');
    await page.click('button[data-do=preview]');
    await page.waitForSelector('.bf-preview [data-total="20"]');
    expect(await page.textContent('.bf-preview tr[data-policy=none]')).toMatch(/none.*20.*0.*0/);
    expect(await page.locator('.bf-preview .slots span').first().textContent()).toBe('#0 2024-01-01 UTC');
    expect(await controller.list({ taskId: 'daily' })).toEqual({ items: [] }); // a preview creates nothing

    await page.click('button[data-do=start]');
    const bar = page.locator('.bf-card progress');
    await bar.waitFor();
    const seen = new Set<number>();
    const end = Date.now() + 15_000;
    for (;;) {
      seen.add(Number(await bar.getAttribute('data-done')));
      if (seen.has(20) || Date.now() > end) break;
      await sleep(25);
    }
    const values = [...seen].sort((a, b) => a - b);
    expect(values.at(-1)).toBe(20);
    expect(values.filter((v) => v > 0 && v < 20).length).toBeGreaterThanOrEqual(3); // it moved, live
    await page.waitForSelector('.bf-card .badge[data-state=completed]');
    expect(await page.textContent('.bf-card .pct')).toBe('20 / 20 done (100%)');
    await page.close();
  });

  it('lets a second person approve a command that waits for approval', async () => {
    const { controller } = controllerWith({ 'etl-load': stepsHandler(100_000, 5) }, { approvals: { rules: [{ actions: ['stop'], groups: ['etl'] }] } } as never);
    controller.define({ id: 'etl-load', group: 'etl' });
    await controller.start();
    const job = await controller.submit('etl-load');
    await untilState(controller, job.id, 'running');
    const s = await serve(controller);

    const ops = await signIn(s, OPS);
    await ops.check(`tr[data-id="${job.id}"] input[type=checkbox]`);
    await ops.click('.batch button[data-action=stop]');
    await ops.waitForSelector(`dialog[data-action=stop] .impact tr[data-id="${job.id}"]`);
    await ops.fill('dialog[data-action=stop] input[name=reason]', 'runaway job');
    await ops.click('dialog[data-action=stop] button[data-confirm=stop]');
    await ops.waitForSelector('.toast:has-text("awaiting approval")');
    expect((await controller.get(job.id))!.state).toBe('running');

    const alice = await signIn(s, ALICE, '#/approvals');
    const row = alice.locator('table.approvals tbody tr[data-command]');
    await row.waitFor();
    expect(await row.textContent()).toContain('ops-bot');
    expect(await row.textContent()).toContain('runaway job');
    await row.locator('button[data-decide=approve]').click();
    await alice.fill('dialog input[name=reason]', 'checked with the owner');
    await alice.click('dialog button[data-confirm=ok]');
    await untilState(controller, job.id, 'stopped', 5000);
    // the requester's page saw it live
    await ops.waitForSelector(badge(job.id, 'stopped'), { timeout: 5000 });
    const decisions = (await controller.audit({ actor: 'alice' })).filter((e) => e.kind === 'command');
    expect(decisions.length).toBeGreaterThan(0);
    await alice.close();
    await ops.close();
  });

  it('shows user- and job-written text as text: an <img onerror> payload in a task id, params, an error and a reason never runs', async () => {
    const payload = '<img src=x onerror="window.__xss=(window.__xss||0)+1;alert(1)">';
    const taskId = `${payload}task`;
    const { controller } = controllerWith({
      [taskId]: async () => {
        throw new Error(`failed: ${payload}`);
      },
      'etl-load': stepsHandler(100_000, 5),
    });
    controller.define({ id: taskId, group: 'grp' });
    controller.define({ id: 'etl-load', group: 'etl' });
    await controller.start();
    const params = { note: payload, [payload]: '<script>window.__xss=99</script>' };
    const bad = await controller.submit(taskId, { params });
    await untilState(controller, bad.id, 'failed');
    const job = await controller.submit('etl-load', { params: { html: payload } });
    await untilState(controller, job.id, 'running');
    const s = await serve(controller);

    const page = await signIn(s, OPS);
    const dialogs: string[] = [];
    const cspReports: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspReports.push(m.text());
    });
    await page.waitForSelector(`tr[data-id="${bad.id}"]`);
    expect(await page.textContent(`tr[data-id="${bad.id}"]`)).toContain(taskId);

    // the payload as a reason, typed into the confirmation dialog
    await page.check(`tr[data-id="${job.id}"] input[type=checkbox]`);
    await page.click('.batch button[data-action=pause]');
    await page.waitForSelector(`dialog[data-action=pause] .impact tr[data-id="${job.id}"]`);
    await page.fill('dialog[data-action=pause] input[name=reason]', payload);
    await page.click('dialog[data-action=pause] button[data-confirm=pause]');
    await page.waitForSelector(badge(job.id, 'paused'), { timeout: 5000 });

    // every page that shows them: the instance pages, the audit trail, the approvals and backfills
    await page.goto(`${s.base}/#/instance/${bad.id}`);
    await page.waitForSelector('pre[data-field=params]');
    expect(JSON.parse((await page.textContent('pre[data-field=params]'))!)).toEqual(params);
    expect(await page.textContent('pre[data-field=error]')).toContain(payload);
    await page.goto(`${s.base}/#/instance/${job.id}`);
    await page.waitForSelector('table.timeline td.reason');
    expect(await page.locator('table.timeline td.reason').allTextContents()).toContain(payload);
    await page.evaluate("location.hash = '#/audit'");
    await page.waitForSelector('table.timeline td.reason');
    expect(await page.locator('table.timeline td.reason').allTextContents()).toContain(payload);
    await page.evaluate(`location.hash = '#/instances?taskId=' + encodeURIComponent(${JSON.stringify(taskId)})`);
    await page.waitForSelector('table.instances tbody tr');
    await page.evaluate("location.hash = '#/backfills'");
    await page.waitForSelector('[data-view=backfills]');
    await sleep(200);

    expect(await page.evaluate('typeof window.__xss')).toBe('undefined');
    expect(await page.evaluate("document.querySelectorAll('img').length")).toBe(0);
    expect(await page.evaluate("document.querySelectorAll('script').length")).toBe(1); // the console's own
    expect(dialogs).toEqual([]);
    expect(cspReports).toEqual([]); // escaping held: the CSP did not even have to refuse anything
    const audit = await controller.audit({ instanceId: job.id, kind: 'command' });
    expect(audit[0].reason).toBe(payload);
    await page.close();
  });

  it('keeps the key in sessionStorage for the tab: a reload opens the console again, and sign-out forgets it', async () => {
    const { controller } = controllerWith({ quick: async () => 'ok' });
    controller.define({ id: 'quick' });
    await controller.start();
    const i: Instance = await controller.submit('quick');
    await untilState(controller, i.id, 'succeeded');
    const s = await serve(controller);
    const page = await context.newPage();
    await page.goto(`${s.base}/`);
    await page.fill('#key', 'not-a-key');
    await page.click('button[type=submit]');
    await page.waitForSelector('#msg:has-text("not accepted")');
    await page.fill('#key', OPS);
    await page.click('button[type=submit]');
    await page.waitForSelector(`tr[data-id="${i.id}"]`);
    await page.reload();
    await page.waitForSelector(`tr[data-id="${i.id}"]`);
    expect(await page.textContent('#who')).toBe('ops-bot');
    await page.click('#signout');
    await page.waitForSelector('#key');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await page.close();
  });
});
