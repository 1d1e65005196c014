// Lint: typescript-eslint's type-aware recommended rules, less the ones the code deliberately does otherwise
// (each with its reason). `npm run lint` runs it with the dependency check (.dependency-cruiser.cjs).
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tap/'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `async` marks the methods of a promise-returning interface (stores, handlers) even where this one waits for nothing.
      '@typescript-eslint/require-await': 'off',
      // A failure caught in one promise (a fill, the hash worker) is stored and rethrown to the others as it came.
      '@typescript-eslint/only-throw-error': 'off',
      // An abort rejects with signal.reason, as the platform's own APIs do.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      // Error messages echo what a client or a file sent, whatever its type.
      '@typescript-eslint/no-base-to-string': 'off',
      // Errors rethrown for users say the cause in their own message.
      'preserve-caught-error': 'off',
      // A pipeline's last stage that only drains is a generator that yields nothing.
      'require-yield': 'off',
      // `_` names a value left out on purpose (a rest sibling, a parameter of a signature).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['test/**'],
    rules: {
      // tap's test() and t.test() return promises that tap itself waits for.
      '@typescript-eslint/no-floating-promises': 'off',
      // Tests read JSON and raw buffers as they come and assert on them.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      // Helpers hand out methods that are bound (arrow properties) or never use `this`.
      '@typescript-eslint/unbound-method': 'off',
      // A value set before an awaited step that may throw is read in the test's failure message.
      'no-useless-assignment': 'off',
      // Out-of-range numbers (1e400, 2 ** 64) are what the validation tests send.
      'no-loss-of-precision': 'off',
    },
  },
  { files: ['**/*.js', '**/*.cjs', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
);
