import { readdirSync, readFileSync } from 'node:fs';

// Process-group plumbing for ChildProcessExecutor. POSIX only: on Windows there are no
// process groups, and signals reach the child alone.

const GROUPS = process.platform !== 'win32';

/**
 * Send `signal` to every process of the group led by `pid` (to `pid` alone on Windows).
 * Returns false when nothing was there to receive it. Never throws.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(GROUPS ? -pid : pid, signal);
    return true;
  } catch (err) {
    // EPERM: a member we may not signal (it changed its user) is still there; ESRCH: nobody is
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the group led by `pid` still has a live member. A member that is only a zombie
 * does not count: in a container whose init does not reap orphans, a killed grandchild
 * stays a zombie forever, yet it runs nothing and holds no pipe.
 */
export function groupAlive(pid: number): boolean {
  if (!signalGroup(pid, 0)) return false;
  if (process.platform !== 'linux') return true;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const stat = processStat(Number(entry));
    if (stat && stat.pgrp === pid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/** State letter and process group of a process, from /proc (Linux). */
export function processStat(pid: number): { state: string; ppid: number; pgrp: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the command name may hold spaces and parentheses: the fields start after the last ')'
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

// Groups started by this process and not yet gone. If the process exits with some still
// running (a crash, process.exit()), they are killed: another controller will recover the
// instance and start the work again, so a survivor would only do it twice.
const live = new Set<number>();
let exitHookInstalled = false;

export function trackGroup(pid: number): void {
  live.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of live) signalGroup(group, 'SIGKILL');
  });
}

export function untrackGroup(pid: number): void {
  live.delete(pid);
}
