// Runs TypeScript sources directly with SWC so decorator metadata (which NestJS and
// TypeORM need) is emitted exactly as in tests; there is no separate build step to drift.
process.env.SWC_NODE_PROJECT ??= require('node:path').join(__dirname, '..', 'tsconfig.json');
require('reflect-metadata');
require('@swc-node/register');
