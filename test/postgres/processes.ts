// Helpers for the tests that run controllers in other processes: spawning the fixture, and
// checking what they left in the database against the transition table.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TRANSITIONS, type AuditEntry, type Instance, type StateStore } from '../../src/index.js';
import { PG_URL } from './pg-env.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/controller-process.ts', import.meta.url));

export type Message = { type: string; [key: string]: unknown };

/** A controller process: `node --import tsx fixtures/controller-process.ts`, driven over IPC. */
export class ControllerProcess {
  readonly child: ChildProcess;
  controllerId = '';
  private readonly inbox: Message[] = [];
  private readonly waiters: { type: string; resolve: (m: Message) => void }[] = [];
  readonly listeners: ((m: Message) => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    schema: string,
    options: { executor?: boolean; leaseMs?: number; concurrency?: number } = {},
  ) {
    this.child = fork(FIXTURE, [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        TASKCTL_PG_URL: PG_URL,
        TASKCTL_PG_SCHEMA: schema,
        NAME: name,
        EXECUTOR: options.executor === false ? '0' : '1',
        LEASE_MS: String(options.leaseMs ?? 1000),
        CONCURRENCY: String(options.concurrency ?? 4),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.on('message', (raw) => {
      const m = raw as Message;
      if (m.type === 'failed') console.error(`${name}: ${String(m.step)} failed: ${String(m.message)}`);
      for (const l of this.listeners) l(m);
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.inbox.push(m);
    });
  }

  async ready(): Promise<this> {
    this.controllerId = (await this.next('ready', 20_000)).controllerId as string;
    return this;
  }

  next(type: string, timeoutMs = 20_000): Promise<Message> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} sent no ${type} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ type, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  send(msg: Message): void {
    this.child.send(msg);
  }

  async request(msg: Message, reply: string, timeoutMs?: number): Promise<Message> {
    const answer = this.next(reply, timeoutMs);
    this.send(msg);
    return answer;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Ask it to shut down; kill it if it does not. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.send({ type: 'exit' });
    const timer = setTimeout(() => this.kill(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const LEGAL = new Set(TRANSITIONS.map((t) => `${t.from}|${t.event}|${t.to}`));

/**
 * Check the audit trail of the given instances: every transition is a row of TRANSITIONS;
 * per instance the transitions chain (each starts where the previous ended, from `none`), end
 * in the stored state, and number exactly its version (every write had its audit entry, and
 * no entry lacks its write). Returns the problems found (none when all is well).
 */
export async function auditProblems(store: StateStore, instances: Instance[]): Promise<string[]> {
  const problems: string[] = [];
  const all = await store.queryAudit({});
  const byInstance = new Map<string, AuditEntry[]>();
  for (const e of all) {
    if (e.kind !== 'transition') continue;
    if (!LEGAL.has(`${e.from}|${e.event}|${e.to}`)) problems.push(`illegal transition ${e.from} -${e.event}-> ${e.to} of ${e.instanceId}`);
    let list = byInstance.get(e.instanceId!);
    if (!list) byInstance.set(e.instanceId!, (list = []));
    list.push(e);
  }
  for (const i of instances) {
    const chain = byInstance.get(i.id) ?? [];
    let at = 'none';
    for (const e of chain) {
      if (e.from !== at) problems.push(`${i.id}: ${e.from} -${e.event}-> ${e.to} follows ${at}`);
      at = e.to!;
    }
    if (at !== i.state) problems.push(`${i.id}: the audit trail ends in ${at}, the instance is ${i.state}`);
    if (chain.length !== i.version) problems.push(`${i.id}: version ${i.version} but ${chain.length} transitions`);
  }
  return problems;
}

/** Every instance of the store (all pages). */
export async function allInstances(store: StateStore): Promise<Instance[]> {
  const out: Instance[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await store.listInstances({ limit: 1000, cursor });
    out.push(...page.items);
    if (!page.cursor) return out;
    cursor = page.cursor;
  }
}
