/** Deadlines and cancellation of the waits of a call (dialling, greeting). */
import { abortError, type CallOptions, RpcError, type RpcErrorKind } from "./transport.ts";

/** The call's options with the timeout left after `started` (dialling took some). */
export function remaining(
  options: CallOptions | undefined,
  started: number,
): CallOptions | undefined {
  if (options?.timeoutMs === undefined) return options;
  return { ...options, timeoutMs: Math.max(1, options.timeoutMs - (Date.now() - started)) };
}

/** Rejects when the signal aborts (the awaited work goes on, for other callers). */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(what, signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(what, signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Rejects with RpcError(kind, message) at `deadline`, after calling `onTimeout`. */
export async function withDeadline<T>(
  promise: Promise<T>,
  deadline: number,
  onTimeout: () => void,
  kind: RpcErrorKind,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout();
          reject(new RpcError(kind, message));
        }, Math.max(0, deadline - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
