import { defineConfig } from 'vitest/config';

// Integration tests build network namespaces and start DPDK: they share the host, so files run one at a time.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'out/vitest.json' },
  },
});
