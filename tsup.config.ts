import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'http/index': 'src/http/index.ts',
    bullmq: 'src/adapters/bullmq.ts',
    'otel/index': 'src/otel/index.ts',
    'postgres/index': 'src/postgres/index.ts',
    cli: 'src/cli/bin.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  // vitest is only needed when a store author runs the contract suite under vitest
  external: ['vitest', 'pg', 'bullmq', '@opentelemetry/api'],
});
