// npx tsx scripts/screenshots.ts: start the demo service, drive the operator console in headless
// Chromium and write PNG screenshots to docs/images/ (used by docs/console.md).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { startDemo } from '../examples/console-demo.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const out = resolve(import.meta.dirname, '..', 'docs', 'images');
mkdirSync(out, { recursive: true });

const demo = await startDemo({ port: 0 });
const profile = mkdtempSync(join(tmpdir(), 'taskctl-shots-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  args: ARGS,
  headless: true,
  viewport: { width: 1440, height: 900 },
  deviceScaleFactor: 1,
});
const shot = async (page: Page, name: string, fullPage = false) => {
  const path = join(out, name);
  await page.screenshot({ path, fullPage });
  console.log(`wrote ${path}`);
};

try {
  const page = await context.newPage();
  await page.goto(demo.url);
  await page.fill('#key', 'k-ops-123');
  await page.click('button[type=submit]');
  await page.waitForSelector('#live.on');
  await page.waitForSelector('table.instances tbody tr[data-id]');
  await page.waitForTimeout(2500);
  await page.click('#nav a[data-tab=instances]');
  await page.waitForSelector('table.instances tbody tr[data-id]');
  await page.waitForTimeout(500);
  await shot(page, 'console-instances.png');

  // batch select the running instances on the page and open the pause dialog
  const running = page.locator('table.instances tbody tr:has(.badge[data-state=running]) input[type=checkbox]');
  const n = Math.min(await running.count(), 3);
  for (let i = 0; i < n; i++) await running.nth(i).check();
  await page.click('.batch button[data-action=pause]');
  await page.waitForSelector('dialog[data-action=pause] .impact table');
  await page.fill('dialog[data-action=pause] input[name=reason]', 'database maintenance window');
  await shot(page, 'console-confirm-dry-run.png');
  await page.click('dialog[data-action=pause] button:has-text("Cancel")');

  // a rerun with downstream, to show downstream instances in the impact
  await page.goto(`${demo.url}#/instances?taskId=ingest-orders&state=succeeded,failed`);
  await page.waitForSelector('table.instances tbody tr[data-id]', { timeout: 30_000 }).catch(() => undefined);

  // backfills: the running one, plus a dry-run preview of a new one
  await page.click('#nav a[data-tab=backfills]');
  await page.waitForSelector('.bf-card progress');
  await page.fill('input[name=taskId]', 'ingest-orders');
  await page.fill('input[name=from]', new Date(Date.now() - 13 * 86_400_000).toISOString().slice(0, 10));
  await page.selectOption('select[name=mode]', 'parallel');
  await page.fill('input[name=concurrency]', '2');
  await page.selectOption('select[name=reprocess]', 'failed');
  await page.click('button[data-do=preview]');
  await page.waitForSelector('.bf-preview table.policy');
  // (page.waitForFunction with a string would be refused by the console's CSP: no eval)
  for (const end = Date.now() + 60_000; Date.now() < end; await page.waitForTimeout(250)) {
    if (Number(await page.locator('.bf-card progress').first().getAttribute('data-done')) >= 8) break;
  }
  await shot(page, 'console-backfill.png', true);

  // an instance page: a sync-crm job, paused so that the diagram highlights 'paused'
  const sync = (await demo.controller.list({ taskId: 'sync-crm', state: ['running', 'queued'] })).items[0];
  await demo.controller.pause({ instanceId: sync.id }, { actor: 'alice', reason: 'CRM API rate limit' });
  await demo.controller.waitFor(sync.id, { timeoutMs: 5000 });
  await page.goto(`${demo.url}#/instance/${sync.id}`);
  await page.waitForSelector('.diagram svg .node.current');
  await page.waitForTimeout(300);
  await shot(page, 'console-instance.png', true);

  await page.click('#nav a[data-tab=audit]');
  await page.waitForSelector('table.timeline tbody tr');
  await shot(page, 'console-audit.png');

  // approvals (a taskctl with governance): ops-bot asks to stop the ledger export, alice decides
  const features = (await (await fetch(`${demo.url}api/session`, { headers: { authorization: 'Bearer k-ops-123' } })).json()) as { features: { approvals: boolean } };
  if (features.features.approvals) {
    const ledger = (await demo.controller.list({ taskId: 'export-ledger' })).items[0];
    await demo.controller.stop({ instanceId: ledger.id }, { actor: 'ops-bot', reason: 'wrong fiscal period in params' });
    const alice = await context.newPage();
    await alice.goto(`${demo.url}#/approvals`);
    await alice.fill('#key', 'k-alice-456');
    await alice.click('button[type=submit]');
    await alice.waitForSelector('table.approvals tbody tr[data-command]');
    await shot(alice, 'console-approvals.png');
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  await demo.close();
}
