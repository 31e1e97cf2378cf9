import type { ServerResponse } from 'node:http';
import type { TaskController } from '../controller/controller.js';
import type { BackfillStatus, CommandEvent, TransitionEvent } from '../types.js';

/** The event streams `GET /api/events` offers. */
export const EVENT_TYPES = ['transition', 'command', 'backfill'] as const;
/** The event types a client can subscribe to. */
export type EventType = (typeof EVENT_TYPES)[number];

/** What an event is about, as visibility rules see it: a task and its group. */
export interface EventSubject {
  /** The task. */
  taskId: string;
  /** The task's group. */
  group?: string;
}

/** May `actor` see events about `subject`? (See docs/console.md, "Who sees which events".) */
export type CanSee = (actor: string, subject: EventSubject) => boolean | Promise<boolean>;

/** A client's buffered output past this size means it does not keep up: it is disconnected. */
const MAX_BUFFERED = 4 * 1024 * 1024;
/** Verdicts of `canSee` are reused for this long per (actor, task). */
const VERDICT_MS = 10_000;

interface Pending {
  type: EventType;
  /** One per instance for command events; one for the others. */
  subjects: (EventSubject & { instanceId?: string })[];
  /** The frame for a client that sees `visible` subjects (undefined: send nothing). */
  render: (visible: (s: EventSubject & { instanceId?: string }) => boolean) => string | undefined;
}

let nextClientId = 1;

class Client {
  readonly id = nextClientId++;
  private readonly verdicts = new Map<string, { ok: boolean; until: number }>();
  private queue: Promise<void> | undefined;
  private queued = 0;
  closed = false;

  constructor(
    readonly res: ServerResponse,
    readonly actor: string,
    readonly types: ReadonlySet<EventType>,
    private readonly canSee: CanSee | undefined,
    private readonly onClose: (c: Client) => void,
  ) {}

  write(frame: string): void {
    if (this.closed || this.res.writableEnded || this.res.destroyed) return;
    this.res.write(frame);
    if (this.res.writableLength > MAX_BUFFERED) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    if (!this.res.writableEnded) this.res.end();
  }

  offer(event: Pending): void {
    if (this.closed || !this.types.has(event.type)) return;
    if (!this.canSee) {
      const frame = event.render(() => true);
      if (frame) this.write(frame);
      return;
    }
    // known verdicts and nothing queued: write at once; otherwise keep the order through a queue
    if (this.queue === undefined && event.subjects.every((s) => this.cached(s) !== undefined)) {
      const frame = event.render((s) => this.cached(s) === true);
      if (frame) this.write(frame);
      return;
    }
    this.queued++;
    this.queue = (this.queue ?? Promise.resolve())
      .then(async () => {
        for (const s of event.subjects) if (this.cached(s) === undefined) await this.ask(s);
        const frame = event.render((s) => this.cached(s) === true);
        if (frame) this.write(frame);
      })
      .catch(() => undefined)
      .finally(() => {
        if (--this.queued === 0) this.queue = undefined;
      });
  }

  private key(s: EventSubject): string {
    return `${s.taskId}\u0000${s.group ?? ''}`;
  }

  private cached(s: EventSubject): boolean | undefined {
    const v = this.verdicts.get(this.key(s));
    return v && v.until > Date.now() ? v.ok : undefined;
  }

  private async ask(s: EventSubject): Promise<void> {
    let ok: boolean;
    try {
      ok = (await this.canSee!(this.actor, s)) === true;
    } catch {
      ok = false;
    }
    if (this.verdicts.size > 10_000) this.verdicts.clear();
    this.verdicts.set(this.key(s), { ok, until: Date.now() + VERDICT_MS });
  }
}

/**
 * Fans the controller's `transition`, `command` and `backfill` events out to Server-Sent-Events
 * clients. Each event is serialized once (per visible subset, for command events under a
 * visibility rule); a heartbeat comment keeps idle connections (and proxies) alive.
 */
export class EventHub {
  private readonly clients = new Set<Client>();
  private heartbeat: NodeJS.Timeout | undefined;
  private attached = false;
  private seq = 0;
  /** instanceId -> subject, so command events need no lookup for instances seen moving. */
  private readonly subjects = new Map<string, EventSubject>();
  private chain: Promise<void> = Promise.resolve();

  private readonly onTransition = (e: TransitionEvent) => {
    const subject = this.subjectOf(e.taskId);
    this.remember(e.instanceId, subject);
    const frame = this.once('transition', e);
    this.publish({ type: 'transition', subjects: [subject], render: (visible) => (visible(subject) ? frame() : undefined) });
  };

  private readonly onBackfill = (e: BackfillStatus) => {
    const subject = this.subjectOf(e.taskId);
    const frame = this.once('backfill', e);
    this.publish({ type: 'backfill', subjects: [subject], render: (visible) => (visible(subject) ? frame() : undefined) });
  };

  private readonly onCommand = (e: CommandEvent) => {
    if (!this.canSee) {
      const frame = this.once('command', e);
      this.publish({ type: 'command', subjects: [], render: frame });
      return;
    }
    // under a visibility rule a client sees the command only with the instances it may see
    const ids = [...new Set([...e.applied.map((a) => a.instanceId), ...e.rejected.map((r) => r.instanceId)])];
    this.chain = this.chain
      .then(async () => {
        const subjects: (EventSubject & { instanceId: string })[] = [];
        for (const instanceId of ids) {
          let subject = this.subjects.get(instanceId);
          if (!subject) {
            const instance = await this.controller.get(instanceId).catch(() => undefined);
            if (!instance) continue;
            subject = this.subjectOf(instance.taskId);
            this.remember(instanceId, subject);
          }
          subjects.push({ ...subject, instanceId });
        }
        const full = this.once('command', e);
        this.publishNow({
          type: 'command',
          subjects,
          render: (visible) => {
            const seen = new Set(subjects.filter(visible).map((s) => s.instanceId));
            if (seen.size === 0) return undefined;
            if (seen.size === ids.length) return full();
            return this.frame('command', {
              ...e,
              applied: e.applied.filter((a) => seen.has(a.instanceId)),
              rejected: e.rejected.filter((r) => seen.has(r.instanceId)),
            });
          },
        });
      })
      .catch(() => undefined);
  };

  constructor(
    private readonly controller: TaskController,
    private readonly canSee: CanSee | undefined,
    private readonly heartbeatMs: number,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Start streaming to `res` (headers are written here). */
  add(res: ServerResponse, actor: string, types: ReadonlySet<EventType>): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.socket?.setTimeout(0);
    res.socket?.setNoDelay(true);
    const client = new Client(res, actor, types, this.canSee, (c) => this.remove(c));
    this.clients.add(client);
    res.on('close', () => client.close());
    res.write(`retry: 3000\n: taskctl events\n\n`);
    client.write(this.frame('ready', { actor, types: [...types], heartbeatMs: this.heartbeatMs }));
    this.attach();
  }

  /** End every stream and detach from the controller. */
  close(): void {
    for (const client of [...this.clients]) client.close();
    this.detach();
  }

  private remove(client: Client): void {
    this.clients.delete(client);
    if (this.clients.size === 0) this.detach();
  }

  private attach(): void {
    if (this.attached) return;
    this.attached = true;
    this.controller.on('transition', this.onTransition);
    this.controller.on('command', this.onCommand);
    this.controller.on('backfill', this.onBackfill);
    this.heartbeat = setInterval(() => {
      const frame = `: ping ${new Date().toISOString()}\n\n`;
      for (const client of this.clients) client.write(frame);
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.controller.off('transition', this.onTransition);
    this.controller.off('command', this.onCommand);
    this.controller.off('backfill', this.onBackfill);
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.subjects.clear();
  }

  private subjectOf(taskId: string): EventSubject {
    const group = this.controller.task(taskId)?.group;
    return group === undefined ? { taskId } : { taskId, group };
  }

  private remember(instanceId: string, subject: EventSubject): void {
    if (!this.canSee) return;
    if (this.subjects.size >= 50_000) this.subjects.delete(this.subjects.keys().next().value!);
    this.subjects.set(instanceId, subject);
  }

  /** Under a visibility rule events pass through one chain, so a command never overtakes its transitions. */
  private publish(event: Pending): void {
    if (!this.canSee) return this.publishNow(event);
    this.chain = this.chain.then(() => this.publishNow(event)).catch(() => undefined);
  }

  private publishNow(event: Pending): void {
    for (const client of this.clients) client.offer(event);
  }

  /** The frame of an event, serialized on first use only (one string for every client). */
  private once(type: EventType, data: unknown): () => string {
    let frame: string | undefined;
    return () => (frame ??= this.frame(type, data));
  }

  private frame(type: string, data: unknown): string {
    return `id: ${++this.seq}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  }
}
