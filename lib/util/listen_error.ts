/** Errors of sockets that could not be opened for listening, worded for the person who configured them. */
import { errorMessage } from "./errors.ts";

/**
 * Why a bind failed, from Deno's error classes or node:net's error codes;
 * undefined for an error that is not a failed bind.
 */
export function bindFailure(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    return "the address is already in use (by another program, or another remise)";
  }
  if (e instanceof Deno.errors.PermissionDenied || code === "EACCES") {
    return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
  }
  if (e instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL") {
    return "no network interface of this machine has that address";
  }
  return undefined;
}

/**
 * The error for a listener that could not be opened: which setting asked
 * for which address, and the likely cause (a port already taken, ...).
 */
export function listenError(setting: string, addr: string, cause: unknown): Error {
  return new Error(
    `Cannot listen on ${addr} (${setting}): ${bindFailure(cause) ?? errorMessage(cause)}`,
    { cause },
  );
}
