// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const bannedInDomain = [
  { name: 'typeorm', message: 'libs/core is the domain: talk to a port, libs/inventory implements it.' },
  { name: 'ssh2', message: 'libs/core is the domain: talk to the XenHost port, libs/xen implements it.' },
  { name: 'bullmq', message: 'libs/core is the domain: talk to the job queue port.' },
  { name: 'ioredis', message: 'libs/core is the domain: talk to a port.' },
  { name: 'pg', message: 'libs/core is the domain: talk to a port.' },
  { name: '@nestjs/common', message: 'libs/core stays framework-free; HTTP mapping lives in apps/api.' },
];

export default tseslint.config(
  {
    ignores: ['node_modules/**', 'dist/**', '.norm/**', 'coverage/**', '**/build/**', 'scripts/*.js'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      'no-console': 'error',
    },
  },
  {
    // Decorator-driven DI needs runtime imports of injected classes, so type-only imports would break Nest.
    files: ['apps/**/*.ts', 'libs/inventory/**/*.ts'],
    rules: { '@typescript-eslint/consistent-type-imports': 'off' },
  },
  {
    files: ['libs/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: bannedInDomain,
          patterns: [
            {
              group: ['typeorm/*', 'bullmq/*', 'ssh2/*'],
              message: 'libs/core must not import infrastructure.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.medium-spec.ts', '**/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            .../** @type {any[]} */ ([]),
            { name: '@norm/xen/testing', message: 'The simulator is for tests and the demo only.' },
          ],
        },
      ],
    },
  },
  {
    files: ['libs/core/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...bannedInDomain,
            { name: '@norm/xen/testing', message: 'The simulator is for tests and the demo only.' },
          ],
          patterns: [
            {
              group: ['typeorm/*', 'bullmq/*', 'ssh2/*', '@norm/inventory', '@norm/xen'],
              message: 'libs/core must not import infrastructure.',
            },
          ],
        },
      ],
    },
  },
  {
    files: [
      'test/**/*.ts',
      'bench/**/*.ts',
      'scripts/**/*.ts',
      '**/*.spec.ts',
      '**/*.medium-spec.ts',
      '**/*.e2e-spec.ts',
      '**/testing/**/*.ts',
    ],
    rules: { 'no-console': 'off' },
  },
);
