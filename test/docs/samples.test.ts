import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Every TypeScript sample in README.md and docs/ is (a part of) a file in examples/, which CI
// type-checks and runs: samples never rot. Imports may differ (a sample imports 'taskctl', an
// example '../src/index.js'); every other line must appear, in order, in one example.
const root = new URL('../../', import.meta.url);
const examples = readdirSync(new URL('examples/', root))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ name: f, lines: normalise(readFileSync(new URL(`examples/${f}`, root), 'utf8')) }));

function normalise(code: string): string[] {
  const out: string[] = [];
  let inImport = false;
  for (const raw of code.split('\n')) {
    const line = raw.trim();
    if (inImport) {
      if (line.includes(' from ') || line.endsWith(';')) inImport = false;
      continue;
    }
    if (line.startsWith('import ') || line.startsWith('import{')) {
      inImport = !line.includes(' from ') && !/^import ['"]/.test(line);
      continue;
    }
    if (line === '' || line.startsWith('//')) continue;
    out.push(line.replace(/\s+\/\/.*$/, '').replace(/;$/, ''));
  }
  return out;
}

function containedInOrder(sample: string[], example: string[]): boolean {
  let at = 0;
  for (const line of sample) {
    const found = example.indexOf(line, at);
    if (found < 0) return false;
    at = found + 1;
  }
  return true;
}

function samples(file: URL): { file: string; index: number; lines: string[] }[] {
  const text = readFileSync(file, 'utf8');
  const out: { file: string; index: number; lines: string[] }[] = [];
  const re = /```(ts|typescript)\n([\s\S]*?)```/g;
  let n = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ file: file.pathname.split('/').slice(-2).join('/'), index: n++, lines: normalise(m[2]) });
  return out;
}

const docs = [new URL('README.md', root), ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => new URL(`docs/${f}`, root))];

describe('every code sample in README and docs is part of a runnable example', () => {
  for (const doc of docs) {
    for (const sample of samples(doc)) {
      it(`${sample.file} sample ${sample.index + 1}`, () => {
        const home = examples.find((e) => containedInOrder(sample.lines, e.lines));
        expect(home?.name, `not found in examples/:\n${sample.lines.join('\n')}`).toBeDefined();
      });
    }
  }
});
