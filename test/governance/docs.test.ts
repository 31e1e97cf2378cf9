import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const EXAMPLES = ['examples/governance.ts', 'examples/governance-otel.ts'];

describe('docs/governance.md', () => {
  it('every code sample is part of a runnable example, verbatim', async () => {
    const doc = await readFile(resolve(root, 'docs/governance.md'), 'utf8');
    const examples = (await Promise.all(EXAMPLES.map((f) => readFile(resolve(root, f), 'utf8')))).join('\n');
    const samples = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(samples.length).toBeGreaterThanOrEqual(12);
    for (const sample of samples) expect(examples, `sample not found in ${EXAMPLES.join(' or ')}:\n${sample}`).toContain(sample);
  });

  it('the examples run and exit by themselves', async () => {
    const run = promisify(execFile);
    const outputs = await Promise.all(
      EXAMPLES.map((f) => run(process.execPath, ['--import', 'tsx', f], { cwd: root, timeout: 20_000 })),
    );
    expect(outputs[0].stdout).toMatch(/audit entries written to/);
    expect(outputs[1].stdout).toMatch(/taskctl\.commands/);
  });
});
