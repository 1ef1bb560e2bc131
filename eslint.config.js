// Type-checked linting for the TypeScript sources, tests, benchmarks and scripts; formatting is Prettier's job,
// so eslint-config-prettier switches off every stylistic rule that would fight it.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/**', 'native/**', 'node_modules/**', 'man/**', 'oclif.manifest.json', 'test/fixtures/**']},
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname},
    },
  },
  {
    rules: {
      // node:test's describe/it/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {allowForKnownSafeCalls: [{from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite']}]},
      ],
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_'}],
      // oclif's flag parsers, hooks and run() must return promises whether or not they wait for anything.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests, benchmarks and build scripts read the CLI's JSON output and child-process messages as untyped data.
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {files: ['**/*.js', '**/*.cjs'], ...tseslint.configs.disableTypeChecked},
  {
    // The start-up shims and the single-executable entry are CommonJS on purpose (an ES-module entry costs start-up).
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        exports: 'writable',
        __dirname: 'readonly',
        __filename: 'readonly',
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {'@typescript-eslint/no-require-imports': 'off'},
  },
  prettier,
)
