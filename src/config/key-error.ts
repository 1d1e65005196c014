// A problem with the value of one configuration key found outside the loader: a file the key names
// cannot be read or holds something wrong. The key is kept apart from the message, so the one who
// reports it (preflight, the CLI) prefixes it once and can say where the key was written (its line).
export class ConfigKeyError extends Error {
  override name = 'ConfigKeyError';

  constructor(
    /** Dotted path of the key, as violations name it: `auth.htpasswd`, `auth.users.0.password`. */
    readonly key: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
