import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import boundaries from './scripts/eslint-import-boundaries.cjs';

export default tseslint.config(
  {
    // The fleet console's page runs in the browser (bundled by apps/telemetry-archivist/console-bundle.js).
    files: ['apps/telemetry-archivist/console/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        fetch: 'readonly',
        EventSource: 'readonly',
        Notification: 'readonly',
        requestAnimationFrame: 'readonly',
        addEventListener: 'readonly',
        removeEventListener: 'readonly',
        prompt: 'readonly',
        confirm: 'readonly',
      },
    },
  },
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.coordbus-data/**', 'k8s/schemas/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
      },
    },
    plugins: { coordbus: boundaries },
    rules: {
      'coordbus/import-boundaries': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
);
