// docs/backfill.md stays true: every code sample in it is an examples/ file, verbatim; every
// such example runs and exits by itself; and the outputs the guide shows are what they print.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(`${root}docs/backfill.md`, 'utf8');
const examples = readdirSync(`${root}examples`).filter((f) => f.startsWith('backfill-') && f.endsWith('.ts'));

/** The fenced blocks of a language, each with the text block that follows it (its output), if any. */
function blocks(markdown: string, lang: string): { code: string; output?: string }[] {
  const out: { code: string; output?: string }[] = [];
  const re = /```(\w*)\n([\s\S]*?)```/g;
  const all: { lang: string; body: string }[] = [];
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) all.push({ lang: m[1], body: m[2] });
  all.forEach((b, i) => {
    if (b.lang !== lang) return;
    const next = all[i + 1];
    out.push({ code: b.body, output: next?.lang === 'text' ? next.body : undefined });
  });
  return out;
}

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', `examples/${file}`], { cwd: root, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('docs/backfill.md', () => {
  const samples = blocks(doc, 'ts');

  it('every code sample is an examples/backfill-*.ts file, verbatim, and every such file is in the guide', () => {
    expect(samples.length).toBeGreaterThanOrEqual(5);
    const files = new Map(examples.map((f) => [f, readFileSync(`${root}examples/${f}`, 'utf8')]));
    for (const s of samples) {
      const match = [...files].find(([, text]) => text === s.code);
      expect(match, `a sample starting ${JSON.stringify(s.code.slice(0, 80))} matches no example file`).toBeDefined();
    }
    for (const [name, text] of files) expect(samples.some((s) => s.code === text), `${name} is not in the guide`).toBe(true);
  });

  it('the examples run, exit by themselves, and print what the guide shows (where it is deterministic)', async () => {
    const results = await Promise.all(examples.map(async (f) => [f, await run(f)] as const));
    for (const [f, r] of results) {
      expect(r.stderr, f).toBe('');
      expect(r.code, `${f} exit code`).toBe(0);
      expect(r.stdout.length, f).toBeGreaterThan(0);
    }
    const output = (name: string) => results.find(([f]) => f === name)![1].stdout;
    const shown = (name: string) => samples.find((s) => s.code === readFileSync(`${root}examples/${name}`, 'utf8'))!.output;
    for (const name of ['backfill-dry-run.ts', 'backfill-downstream.ts']) expect(output(name)).toBe(shown(name));
    expect(output('backfill-basic.ts')).toContain('done: completed 31 succeeded, 0 failed');
    expect(output('backfill-restart.ts')).toContain('done: completed 31 succeeded; 31 dates, 31 instances');
    expect(output('backfill-control.ts')).toMatch(/^paused (\d+) instances at the pause, \1 30 ms later\ndone: cancelled \d+ of 744 slots were created\nrecord: cancelled\n$/);
  }, 30_000);
});
