import { isConflict } from "./errors.js";

/**
 * Runs `attempt` until it does not fail with 409 Conflict, at most `maxAttempts` times. Each
 * attempt must re-read what it changes (optimistic concurrency: read, mutate, write with the
 * read's resourceVersion).
 */
export async function retryOnConflict<R>(attempt: (n: number) => Promise<R>, maxAttempts = 5): Promise<R> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!isConflict(err) || n + 1 >= maxAttempts) throw err;
    }
  }
}
