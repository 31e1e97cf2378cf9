import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TaskController } from '../controller/controller.js';
import { isTaskControlError, TaskControlError } from '../errors.js';
import { formatTimeline } from '../format/timeline.js';
import type { StateStore } from '../store/state-store.js';
import type { AuditEntry, BackfillStatus, ControlResult, Instance, Target } from '../types.js';

/** Exit codes: what happened, for scripts. */
export const EXIT = {
  ok: 0,
  /** The command ran, but some instances were rejected. */
  partial: 1,
  /** Bad usage or invalid input (`VALIDATION`). */
  usage: 2,
  notFound: 3,
  forbidden: 4,
  /** `CONFLICT`, `ILLEGAL_TRANSITION`, `BACKFILL_CONFLICT`. */
  conflict: 5,
  /** The database cannot be reached. */
  unavailable: 6,
  /** Anything else. */
  error: 10,
} as const;

/** Where the CLI writes; tests pass their own. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  /** A terminal that can redraw a progress bar. */
  isTTY: boolean;
  env: Record<string, string | undefined>;
}

/** How the CLI opens its store; the default opens a PostgresStateStore. */
export type StoreFactory = (url: string, schema: string) => Promise<StateStore>;

const GLOBAL_HELP = `taskctl — operate taskctl instances on a PostgreSQL store

Usage: taskctl [--db URL] [--schema NAME] [--actor NAME] [--json] <command> [options]

Commands:
  list        list instances (filters, paging)
  show        one instance and its timeline
  pause       pause instances, a task, a group or all
  resume      resume them (continue, restart or skip; now or at a time)
  stop        stop them (with a grace period, or --force)
  rerun       rerun them as a new attempt (params, --only-failed, --downstream)
  backfill    run a task over a range of dates (--dry-run first), with a progress bar
  audit       the audit trail (--since/--until, --jsonl for export)
  approvals   commands waiting for a second person
  approve     approve a waiting command
  reject      reject (or withdraw) a waiting command

Global options:
  --db URL        PostgreSQL connection string (default: $TASKCTL_PG_URL or $DATABASE_URL)
  --schema NAME   the store's schema (default: taskctl)
  --actor NAME    who you are, for the audit trail (default: $TASKCTL_ACTOR or $USER)
  --json          machine-readable output
  -h, --help      help for a command: taskctl <command> --help

Exit codes: 0 ok, 1 some instances rejected, 2 usage or invalid input, 3 not found,
4 forbidden, 5 conflict, 6 database unavailable, 10 other errors.`;

const TARGET_HELP = `Target: one or more instance ids, or --task ID, --group NAME, --backfill ID, or --all.`;

const COMMON = { reason: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'idempotency-key': { type: 'string' } } as const;
const TARGET = { task: { type: 'string' }, group: { type: 'string' }, backfill: { type: 'string' }, all: { type: 'boolean' } } as const;

interface CommandSpec {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run: (ctx: RunContext) => Promise<number>;
}

interface RunContext {
  controller: TaskController;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  actor: string;
  json: boolean;
  io: CliIO;
}

function usageError(message: string): TaskControlError {
  return new TaskControlError('VALIDATION', message, { issues: [{ path: ['args'], message }] });
}

function targetOf(values: RunContext['values'], positionals: string[]): Target {
  const given = [
    positionals.length > 0 ? 'ids' : undefined,
    values.task ? 'task' : undefined,
    values.group ? 'group' : undefined,
    values.backfill ? 'backfill' : undefined,
    values.all ? 'all' : undefined,
  ].filter(Boolean);
  if (given.length !== 1) throw usageError(`give exactly one target: instance ids, --task, --group, --backfill or --all (got ${given.length ? given.join(', ') : 'none'})`);
  if (positionals.length === 1) return { instanceId: positionals[0] };
  if (positionals.length > 1) return { instanceIds: positionals };
  if (values.task) return { taskId: String(values.task) };
  if (values.group) return { group: String(values.group) };
  if (values.backfill) return { backfillId: String(values.backfill) };
  return { all: true };
}

function json(value: string | undefined, name: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw usageError(`--${name} must be a JSON object, e.g. '{"region":"eu"}'`);
  }
}

function int(value: string | boolean | string[] | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw usageError(`--${name} must be a whole number`);
  return n;
}

/** Render rows as an aligned text table. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const text = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => text(r[c]).length))));
  const line = (cells: string[]) => cells.map((cell, i) => cell.slice(0, widths[i]).padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => text(r[c]))))].join('\n');
}

function printResult(ctx: RunContext, result: ControlResult, target?: Target): number {
  if (ctx.json) ctx.io.out(JSON.stringify(result, null, 2));
  else {
    ctx.io.out(`${result.action} ${result.commandId}: ${result.status}`);
    const scope = target && ('taskId' in target ? `task ${target.taskId}` : 'group' in target ? `group ${target.group}` : 'all' in target ? 'all instances' : undefined);
    if (scope && result.status === 'completed' && !ctx.values['dry-run']) {
      if (result.action === 'pause') ctx.io.out(`scope held: new instances of ${scope} are created paused until it is resumed`);
      if (result.action === 'resume') ctx.io.out(`scope released: ${scope}`);
    }
    if (result.applied.length) ctx.io.out(table(result.applied as unknown as Record<string, unknown>[], ['instanceId', 'from', 'to', 'changed']));
    if (result.rejected.length) {
      ctx.io.out('rejected:');
      ctx.io.out(table(result.rejected as unknown as Record<string, unknown>[], ['instanceId', 'code', 'message']));
    }
    if (result.status === 'completed' && !result.applied.length && !result.rejected.length) ctx.io.out('nothing to change');
  }
  return result.rejected.length > 0 ? EXIT.partial : EXIT.ok;
}

function instanceRow(i: Instance): Record<string, unknown> {
  return { id: i.id, task: i.taskId, group: i.group, logicalDate: i.logicalDate, state: i.state, attempt: i.attempt, error: i.error?.code, updated: i.updatedAt };
}

function bar(status: BackfillStatus, width = 30): string {
  const c = status.counts;
  const finished = c.succeeded + c.failed + c.stopped + c.skipped;
  const ratio = status.total === 0 ? 1 : Math.min(1, finished / status.total);
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${finished}/${status.total}  ok ${c.succeeded}  failed ${c.failed}  running ${c.running}  ${status.state}`;
}

const COMMANDS: Record<string, CommandSpec> = {
  list: {
    summary: 'list instances',
    usage: 'taskctl list [--task ID] [--group NAME] [--state S[,S...]] [--backfill ID] [--limit N] [--cursor C]',
    options: { task: { type: 'string' }, group: { type: 'string' }, state: { type: 'string' }, backfill: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } },
    async run(ctx) {
      const v = ctx.values;
      const page = await ctx.controller.list({
        taskId: v.task as string | undefined,
        group: v.group as string | undefined,
        state: v.state ? (String(v.state).split(',') as Instance['state'][]) : undefined,
        backfillId: v.backfill as string | undefined,
        limit: int(v.limit, 'limit') ?? 50,
        cursor: v.cursor as string | undefined,
      });
      if (ctx.json) ctx.io.out(JSON.stringify(page, null, 2));
      else {
        ctx.io.out(table(page.items.map(instanceRow), ['id', 'task', 'group', 'logicalDate', 'state', 'attempt', 'error', 'updated']));
        if (page.cursor) ctx.io.out(`more: taskctl list --cursor ${page.cursor}`);
      }
      return EXIT.ok;
    },
  },
  show: {
    summary: 'one instance and its timeline',
    usage: 'taskctl show <instanceId>',
    options: {},
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw usageError('show needs an instance id');
      const instance = await ctx.controller.get(id);
      if (!instance) throw new TaskControlError('NOT_FOUND', `instance ${id} does not exist`);
      const audit = await ctx.controller.audit({ instanceId: id });
      if (ctx.json) ctx.io.out(JSON.stringify({ instance, audit }, null, 2));
      else {
        const fields: [string, unknown][] = [
          ['id', instance.id], ['task', instance.taskId], ['group', instance.group], ['logical date', instance.logicalDate],
          ['state', instance.state], ['attempt', instance.attempt], ['params', instance.params], ['checkpoint', instance.checkpoint],
          ['error', instance.error && `${instance.error.code}: ${instance.error.message}`], ['progress', instance.progress && `${instance.progress.done}/${instance.progress.total ?? '?'}`],
          ['backfill', instance.backfillId], ['owner', instance.lease?.owner], ['updated', instance.updatedAt],
        ];
        for (const [k, v] of fields) if (v !== undefined) ctx.io.out(`${k.padEnd(13)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
        ctx.io.out('\ntimeline:');
        ctx.io.out(formatTimeline(audit));
      }
      return EXIT.ok;
    },
  },
  pause: {
    summary: 'pause instances or hold a scope',
    usage: `taskctl pause <target> [--force] [--grace-ms N] [--reason TEXT] [--dry-run]\n${TARGET_HELP}`,
    options: { ...TARGET, ...COMMON, force: { type: 'boolean' }, 'grace-ms': { type: 'string' } },
    async run(ctx) {
      const v = ctx.values;
      const target = targetOf(v, ctx.positionals);
      return printResult(ctx, await ctx.controller.pause(target, {
        actor: ctx.actor, reason: v.reason as string | undefined, dryRun: v['dry-run'] as boolean | undefined,
        idempotencyKey: v['idempotency-key'] as string | undefined, mode: v.force ? 'force' : 'graceful', graceMs: int(v['grace-ms'], 'grace-ms'),
      }), target);
    },
  },
  resume: {
    summary: 'resume paused instances or release a scope',
    usage: `taskctl resume <target> [--strategy continue|restart|skip] [--params JSON] [--at ISO] [--reason TEXT] [--dry-run]\n${TARGET_HELP}`,
    options: { ...TARGET, ...COMMON, strategy: { type: 'string' }, params: { type: 'string' }, at: { type: 'string' } },
    async run(ctx) {
      const v = ctx.values;
      const target = targetOf(v, ctx.positionals);
      return printResult(ctx, await ctx.controller.resume(target, {
        actor: ctx.actor, reason: v.reason as string | undefined, dryRun: v['dry-run'] as boolean | undefined,
        idempotencyKey: v['idempotency-key'] as string | undefined, strategy: v.strategy as 'continue' | undefined,
        params: json(v.params as string | undefined, 'params'), ...(v.at ? { at: String(v.at) } : {}),
      } as Parameters<TaskController['resume']>[1]), target);
    },
  },
  stop: {
    summary: 'stop instances',
    usage: `taskctl stop <target> [--force] [--grace-ms N] [--reason TEXT] [--dry-run]\n${TARGET_HELP}`,
    options: { ...TARGET, ...COMMON, force: { type: 'boolean' }, 'grace-ms': { type: 'string' } },
    async run(ctx) {
      const v = ctx.values;
      return printResult(ctx, await ctx.controller.stop(targetOf(v, ctx.positionals), {
        actor: ctx.actor, reason: v.reason as string | undefined, dryRun: v['dry-run'] as boolean | undefined,
        idempotencyKey: v['idempotency-key'] as string | undefined, force: v.force as boolean | undefined, graceMs: int(v['grace-ms'], 'grace-ms'),
      }));
    },
  },
  rerun: {
    summary: 'rerun instances as a new attempt',
    usage: `taskctl rerun <target> [--params JSON] [--only-failed] [--downstream] [--reason TEXT] [--dry-run]\n${TARGET_HELP}`,
    options: { ...TARGET, ...COMMON, params: { type: 'string' }, 'only-failed': { type: 'boolean' }, downstream: { type: 'boolean' } },
    async run(ctx) {
      const v = ctx.values;
      return printResult(ctx, await ctx.controller.rerun(targetOf(v, ctx.positionals), {
        actor: ctx.actor, reason: v.reason as string | undefined, dryRun: v['dry-run'] as boolean | undefined,
        idempotencyKey: v['idempotency-key'] as string | undefined, params: json(v.params as string | undefined, 'params'),
        onlyFailed: v['only-failed'] as boolean | undefined, downstream: v.downstream as boolean | undefined,
      }));
    },
  },
  backfill: {
    summary: 'run a task over a range of dates',
    usage: `taskctl backfill <taskId> --from ISO --to ISO (--cron EXPR | --every DURATION) [--timezone ZONE]
                 [--group NAME] [--mode serial|parallel] [--concurrency N] [--reprocess none|failed|all]
                 [--order asc|desc] [--params JSON] [--dry-run]
The task's schedule is not stored with its instances, so give it here (--cron or --every).
Without --dry-run the command stays to drive the backfill and shows its progress; workers run the instances.`,
    options: {
      from: { type: 'string' }, to: { type: 'string' }, cron: { type: 'string' }, every: { type: 'string' }, timezone: { type: 'string' },
      group: { type: 'string' }, mode: { type: 'string' }, concurrency: { type: 'string' }, reprocess: { type: 'string' }, order: { type: 'string' },
      params: { type: 'string' }, 'dry-run': { type: 'boolean' }, reason: { type: 'string' },
    },
    async run(ctx) {
      const v = ctx.values;
      const taskId = ctx.positionals[0];
      if (!taskId) throw usageError('backfill needs a task id');
      if (!v.from || !v.to) throw usageError('backfill needs --from and --to');
      if (!v.cron === !v.every) throw usageError('backfill needs exactly one of --cron or --every');
      const timezone = v.timezone as string | undefined;
      const schedule = v.cron ? { cron: String(v.cron), ...(timezone ? { timezone } : {}) } : { every: String(v.every), ...(timezone ? { timezone } : {}) };
      ctx.controller.define({ id: taskId, ...(v.group ? { group: String(v.group) } : {}), schedule });
      const handle = await ctx.controller.backfill(taskId, {
        from: String(v.from), to: String(v.to), actor: ctx.actor, mode: v.mode as 'serial' | undefined,
        concurrency: int(v.concurrency, 'concurrency'), reprocess: v.reprocess as 'none' | undefined, order: v.order as 'asc' | undefined,
        params: json(v.params as string | undefined, 'params'), dryRun: v['dry-run'] as boolean | undefined, reason: v.reason as string | undefined,
      });
      if (handle.plan) {
        if (ctx.json) ctx.io.out(JSON.stringify({ plan: handle.plan, preview: handle.preview?.slice(0, 20) }, null, 2));
        else {
          const p = handle.plan;
          ctx.io.out(`dry run: ${p.total} dates; would create ${p.wouldCreate}, rerun ${p.wouldRerun}, skip ${p.wouldSkip}`);
          ctx.io.out(table(Object.entries(p.byPolicy).map(([policy, c]) => ({ reprocess: policy, ...c })), ['reprocess', 'wouldCreate', 'wouldRerun', 'wouldSkip']));
          ctx.io.out('first dates:');
          for (const slot of handle.preview?.slice(0, 10) ?? []) ctx.io.out(`  ${slot.logicalDate}`);
        }
        return EXIT.ok;
      }
      if (!ctx.json) ctx.io.err(`backfill ${handle.id} started; Ctrl-C leaves it running for the workers to finish`);
      let last = '';
      const draw = (s: BackfillStatus) => {
        const line = bar(s);
        if (line === last) return;
        last = line;
        if (ctx.json) return;
        if (ctx.io.isTTY) ctx.io.err(`\r${line}`);
        else ctx.io.err(line);
      };
      ctx.controller.on('backfill', (s) => s.id === handle.id && draw(s));
      draw(handle.status());
      // the store's connections may be unref'd: keep this process up (and the bar fresh) until done
      const keepAlive = setInterval(() => draw(handle.status()), 500);
      const final = await handle.done.finally(() => clearInterval(keepAlive));
      if (ctx.io.isTTY && !ctx.json) ctx.io.err('\n');
      if (ctx.json) ctx.io.out(JSON.stringify(final, null, 2));
      else ctx.io.out(`backfill ${final.id} ${final.state}: ${final.counts.succeeded} succeeded, ${final.counts.failed} failed, ${final.counts.stopped} stopped`);
      return final.counts.failed + final.counts.stopped > 0 ? EXIT.partial : EXIT.ok;
    },
  },
  audit: {
    summary: 'the audit trail',
    usage: 'taskctl audit [--instance ID] [--task ID] [--backfill ID] [--actor NAME] [--action A] [--since ISO] [--until ISO] [--limit N] [--jsonl]',
    options: {
      instance: { type: 'string' }, task: { type: 'string' }, backfill: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string' },
      since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' }, jsonl: { type: 'boolean' },
    },
    async run(ctx) {
      const v = ctx.values;
      const filter = {
        instanceId: v.instance as string | undefined, taskId: v.task as string | undefined, backfillId: v.backfill as string | undefined,
        actor: v.actor as string | undefined, action: v.action as string | undefined, since: v.since as string | undefined, until: v.until as string | undefined,
      };
      if (v.jsonl) {
        for await (const entry of ctx.controller.auditStream(filter)) ctx.io.out(JSON.stringify(entry));
        return EXIT.ok;
      }
      const entries: AuditEntry[] = await ctx.controller.audit({ ...filter, limit: int(v.limit, 'limit') ?? 200 });
      ctx.io.out(ctx.json ? JSON.stringify(entries, null, 2) : formatTimeline(entries));
      return EXIT.ok;
    },
  },
  approvals: {
    summary: 'commands waiting for a second person',
    usage: 'taskctl approvals [--state awaiting|approved|rejected|expired]',
    options: { state: { type: 'string' } },
    async run(ctx) {
      const state = ctx.values.state as 'awaiting' | undefined;
      const list = await ctx.controller.approvals(state ? { state } : {});
      if (ctx.json) ctx.io.out(JSON.stringify(list, null, 2));
      else ctx.io.out(table(list.map((a) => ({ ...a, target: JSON.stringify(a.target) })), ['commandId', 'action', 'target', 'requestedBy', 'state', 'createdAt', 'expiresAt', 'decidedBy']));
      return EXIT.ok;
    },
  },
  approve: {
    summary: 'approve a waiting command (applies it)',
    usage: 'taskctl approve <commandId> [--reason TEXT]',
    options: { reason: { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw usageError('approve needs a command id');
      return printResult(ctx, await ctx.controller.approve(id, { actor: ctx.actor, reason: ctx.values.reason as string | undefined }));
    },
  },
  reject: {
    summary: 'reject (or withdraw) a waiting command',
    usage: 'taskctl reject <commandId> [--reason TEXT]',
    options: { reason: { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw usageError('reject needs a command id');
      await ctx.controller.reject(id, { actor: ctx.actor, reason: ctx.values.reason as string | undefined });
      ctx.io.out(ctx.json ? JSON.stringify({ commandId: id, state: 'rejected' }) : `rejected ${id}`);
      return EXIT.ok;
    },
  },
};

function exitCodeOf(err: unknown): number {
  if (!isTaskControlError(err)) return EXIT.error;
  switch (err.code) {
    case 'VALIDATION':
      return EXIT.usage;
    case 'NOT_FOUND':
      return EXIT.notFound;
    case 'FORBIDDEN':
      return EXIT.forbidden;
    case 'CONFLICT':
    case 'ILLEGAL_TRANSITION':
    case 'BACKFILL_CONFLICT':
      return EXIT.conflict;
    case 'UNAVAILABLE':
      return EXIT.unavailable;
    default:
      return EXIT.error;
  }
}

async function defaultStore(url: string, schema: string): Promise<StateStore> {
  const { PostgresStateStore } = await import('../postgres/index.js');
  const store = new PostgresStateStore({ connectionString: url, schema });
  await store.migrate();
  return store;
}

/** Run the CLI with `argv` (without `node` and the script); resolves to the exit code. */
export async function runCli(argv: string[], io: CliIO, openStore: StoreFactory = defaultStore): Promise<number> {
  const global = parseArgs({
    args: argv,
    options: { db: { type: 'string' }, schema: { type: 'string' }, actor: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: false,
  });
  const name = global.positionals[0];
  const spec = name ? COMMANDS[name] : undefined;
  if (!name || (!spec && global.values.help)) {
    io.out(GLOBAL_HELP);
    return name || global.values.help ? EXIT.ok : EXIT.usage;
  }
  if (!spec) {
    io.err(`unknown command '${name}'\n\n${GLOBAL_HELP}`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { db: { type: 'string' }, schema: { type: 'string' }, actor: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...spec.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    io.err(`${(err as Error).message}\n\nUsage: ${spec.usage}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    io.out(`${spec.summary}\n\nUsage: ${spec.usage}\n\nGlobal options: --db URL, --schema NAME, --actor NAME, --json`);
    return EXIT.ok;
  }
  const url = (parsed.values.db as string | undefined) ?? io.env.TASKCTL_PG_URL ?? io.env.DATABASE_URL;
  if (!url) {
    io.err('no database: pass --db URL or set TASKCTL_PG_URL');
    return EXIT.usage;
  }
  const json = Boolean(parsed.values.json);
  let store: StateStore | undefined;
  let controller: TaskController | undefined;
  try {
    store = await openStore(url, (parsed.values.schema as string | undefined) ?? 'taskctl');
    controller = new TaskController({ store });
    const actor = (parsed.values.actor as string | undefined) ?? io.env.TASKCTL_ACTOR ?? io.env.USER ?? 'cli';
    return await spec.run({ controller, values: parsed.values, positionals: parsed.positionals.slice(1), actor, json, io });
  } catch (err) {
    const code = exitCodeOf(err);
    if (json) io.out(JSON.stringify({ error: isTaskControlError(err) ? { code: err.code, message: err.message, issues: err.issues } : { code: 'ERROR', message: String(err) } }));
    else io.err(`taskctl ${name}: ${err instanceof Error ? err.message : String(err)}${code === EXIT.usage ? `\n\nUsage: ${spec.usage}` : ''}`);
    return code;
  } finally {
    await controller?.close().catch(() => undefined);
    await store?.close?.().catch(() => undefined);
  }
}
