import { z } from 'zod';
import { TaskControlError } from '../errors.js';
import { parse } from '../schemas.js';
import type { AuthAction, AuthRequest } from '../types.js';

const AUTH_ACTIONS = ['submit', 'pause', 'resume', 'stop', 'rerun', 'backfill'] as const;

const name = z.string().min(1, 'must not be empty');

/** One rule of a role: which actions it allows, on which tasks, groups and environments. */
export const ruleSchema = z
  .object({
    actions: z.array(z.enum([...AUTH_ACTIONS, '*'])).min(1, 'must name at least one action'),
    tasks: z.array(name).min(1).optional(),
    groups: z.array(name).min(1).optional(),
    environments: z.array(name).min(1).optional(),
    all: z.boolean().optional(),
  })
  .strict();

/**
 * A rule of `approvals.rules`: like an rbac rule, but only control commands can wait for a
 * second person, so `submit` and `backfill` (which would never match) are refused.
 */
export const approvalRuleSchema = ruleSchema.extend({
  actions: z
    .array(
      z.enum(['pause', 'resume', 'stop', 'rerun', '*'], {
        error: () => "approvals apply to 'pause', 'resume', 'stop' and 'rerun' (or '*'); submits and backfills never wait for one",
      }),
    )
    .min(1, 'must name at least one action'),
});

/** A rule: `actions` on `tasks` (globs, `*` matches any run of characters) or `groups`, in `environments`. */
export interface Rule {
  /** The actions it allows (`'*'`: all of them, on every target). */
  actions: (AuthAction | '*')[];
  /** Task id globs (`*` matches any run of characters). */
  tasks?: string[];
  /** Group names. */
  groups?: string[];
  /** The controller environments it applies in; every environment when absent. */
  environments?: string[];
  /** Also allow (or, in approval rules, only match) `{ all: true }` targets. */
  all?: boolean;
}

const policySchema = z
  .object({
    roles: z.record(name, z.array(ruleSchema)),
    actors: z.record(name, z.array(name)).optional(),
    resolveRoles: z.custom<(actor: string) => string[] | Promise<string[]>>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict()
  .superRefine((policy, ctx) => {
    for (const [actor, roles] of Object.entries(policy.actors ?? {})) {
      roles.forEach((role, i) => {
        if (!Object.hasOwn(policy.roles, role)) {
          ctx.addIssue({ code: 'custom', path: ['actors', actor, i], message: `role '${role}' does not exist (roles: ${Object.keys(policy.roles).join(', ') || 'none'})` });
        }
      });
    }
    if (!policy.actors && !policy.resolveRoles) {
      ctx.addIssue({ code: 'custom', path: ['actors'], message: 'give actors (actor -> roles) or resolveRoles(actor)' });
    }
  });

/** The plain-data policy {@link rbac} turns into an `authorize` hook. */
export interface RbacPolicy {
  /** Role name -> the rules it grants. A role with no rules (e.g. `viewer: []`) may do nothing. */
  roles: Record<string, Rule[]>;
  /** Actor -> role names. */
  actors?: Record<string, string[]>;
  /** Or: the roles of an actor, looked up by the host (e.g. from its identity provider). */
  resolveRoles?: (actor: string) => string[] | Promise<string[]>;
}

/** What a command acts on, as rules see it: each instance's (or the target's) task and group. */
export interface AuthSubject {
  /** The task. */
  taskId?: string;
  /** The task's group. */
  group?: string;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

interface CompiledRule extends Rule {
  role: string;
  taskPatterns?: RegExp[];
}

/** The subjects a request names: from `subjects` when the controller gives them, else from tasks/groups. */
function subjectsOf(req: AuthRequest): AuthSubject[] {
  if (req.subjects) return req.subjects;
  const out: AuthSubject[] = req.tasks.map((taskId) => ({ taskId }));
  if (out.length === 0) for (const group of req.groups) out.push({ group });
  return out;
}

function covers(rule: CompiledRule, subject: AuthSubject): boolean {
  if (subject.taskId !== undefined && rule.taskPatterns?.some((re) => re.test(subject.taskId!))) return true;
  if (subject.group !== undefined && rule.groups?.includes(subject.group)) return true;
  return false;
}

/**
 * A ready `authorize` hook from a plain, validated policy:
 *
 * ```ts
 * authorize: rbac({
 *   roles: { operator: [{ actions: ['pause', 'resume'], groups: ['etl'] }], admin: [{ actions: ['*'] }] },
 *   actors: { alice: ['operator'], bob: ['admin'] },
 * })
 * ```
 *
 * A rule with `tasks` or `groups` allows a command when every instance it names (or the task
 * or group it targets) is covered by a task glob or a group; a rule naming neither allows any
 * target but `{ all: true }`, which needs `all: true` or `actions: ['*']`. `environments` limits a
 * rule to controllers of those environments. A denial throws `FORBIDDEN` naming the actor's
 * roles and the reason (no role; action, task, group or environment not allowed).
 *
 * @throws {@link TaskControlError} `VALIDATION` when the policy is malformed: an unknown action,
 *   an actor mapped to a role that does not exist.
 */
export function rbac(policy: RbacPolicy): (req: AuthRequest) => boolean | Promise<boolean> {
  const p = parse(policySchema, policy, 'policy');
  const compiled = new Map<string, CompiledRule[]>();
  for (const [role, rules] of Object.entries(p.roles)) {
    compiled.set(
      role,
      rules.map((r) => ({ ...r, role, taskPatterns: r.tasks?.map(globToRegExp) })),
    );
  }
  const deny = (actor: string | undefined, roles: string[], why: string): never => {
    const who = actor ?? 'a caller with no actor';
    throw new TaskControlError('FORBIDDEN', `rbac denied ${who} (roles: ${roles.length ? roles.join(', ') : 'none'}): ${why}`, {
      details: { ruleSet: 'rbac', roles, reason: why },
    });
  };
  // Allows for actors of the static `actors` map depend only on the request's shape: remember
  // them (bounded), so that a busy submit path pays for a lookup, not a rule walk.
  const allowed = new Set<string>();
  const shapeOf = (req: AuthRequest): string => {
    let key = `${req.actor}\u0000${req.action}\u0000${req.environment ?? ''}\u0000${req.target !== undefined && 'all' in req.target ? 'all' : ''}`;
    for (const s of subjectsOf(req)) key += `\u0000${s.taskId ?? ''}\u0001${s.group ?? ''}`;
    return key;
  };
  // a remembered allow is answered at once (not a promise): the controller then skips a turn
  return (req: AuthRequest): boolean | Promise<boolean> => {
    let shape: string | undefined;
    let listed: string[] | undefined;
    try {
      // own properties only: an actor named 'toString' or '__proto__' has no roles
      listed = req.actor !== undefined && p.actors && Object.hasOwn(p.actors, req.actor) ? p.actors[req.actor] : undefined;
      shape = listed !== undefined ? shapeOf(req) : undefined;
    } catch (err) {
      return Promise.reject(err);
    }
    if (shape !== undefined && allowed.has(shape)) return true;
    return decide(req, req.actor, listed).then((verdict) => {
      if (shape !== undefined) {
        if (allowed.size >= 10_000) allowed.clear();
        allowed.add(shape);
      }
      return verdict;
    });
  };
  async function decide(req: AuthRequest, actor: string | undefined, listed: string[] | undefined): Promise<true> {
    const roles = actor === undefined ? [] : ((listed ?? (p.resolveRoles ? await p.resolveRoles(actor) : [])) as string[]);
    if (roles.length === 0) return deny(actor, roles, 'no role');
    const rules = roles.flatMap((role) => compiled.get(role) ?? []);
    const byAction = rules.filter((r) => r.actions.includes('*') || r.actions.includes(req.action as AuthAction));
    if (byAction.length === 0) return deny(actor, roles, `action '${req.action}' not allowed`);
    const byEnv = byAction.filter((r) => !r.environments || (req.environment !== undefined && r.environments.includes(req.environment)));
    if (byEnv.length === 0) return deny(actor, roles, `environment '${req.environment ?? '(none)'}' not allowed for '${req.action}'`);
    const isAll = req.target !== undefined && 'all' in req.target;
    if (isAll) {
      if (byEnv.some((r) => r.all === true || (r.actions.includes('*') && !r.tasks && !r.groups))) return true;
      return deny(actor, roles, `'${req.action}' on all instances needs a rule with all: true or actions ['*']`);
    }
    if (byEnv.some((r) => !r.tasks && !r.groups)) return true;
    const subjects = subjectsOf(req);
    if (subjects.length > 0 && subjects.every((s) => byEnv.some((r) => covers(r, s)))) return true;
    const uncovered = subjects.find((s) => !byEnv.some((r) => covers(r, s)));
    if (uncovered?.taskId !== undefined) {
      return deny(actor, roles, `task '${uncovered.taskId}'${uncovered.group ? ` (group '${uncovered.group}')` : ''} not allowed for '${req.action}'`);
    }
    if (uncovered?.group !== undefined) return deny(actor, roles, `group '${uncovered.group}' not allowed for '${req.action}'`);
    return deny(actor, roles, `target not allowed for '${req.action}'`);
  }
}

/** True when an approval rule matches a command (`all: true` only matches `{ all: true }` targets). */
export function approvalRuleMatches(rule: Rule, req: AuthRequest): boolean {
  if (!(rule.actions.includes('*') || rule.actions.includes(req.action as AuthAction))) return false;
  if (rule.environments && (req.environment === undefined || !rule.environments.includes(req.environment))) return false;
  const isAll = req.target !== undefined && 'all' in req.target;
  if (rule.all) return isAll;
  if (!rule.tasks && !rule.groups) return true;
  const compiled: CompiledRule = { ...rule, role: '', taskPatterns: rule.tasks?.map(globToRegExp) };
  return subjectsOf(req).some((s) => covers(compiled, s));
}
