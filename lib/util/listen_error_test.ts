import assert from "node:assert/strict";
import { bindFailure, listenError } from "./listen_error.ts";

Deno.test("listen errors: Deno's and node:net's bind failures are told in words", () => {
  const inUse = "the address is already in use (by another program, or another remise)";
  assert.equal(
    bindFailure(new Deno.errors.AddrInUse("Address already in use (os error 98)")),
    inUse,
  );
  assert.equal(
    bindFailure(Object.assign(new Error("listen EADDRINUSE"), { code: "EADDRINUSE" })),
    inUse,
  );
  assert.match(bindFailure(new Deno.errors.PermissionDenied("os error 13"))!, /below 1024/);
  assert.match(
    bindFailure(Object.assign(new Error("x"), { code: "EADDRNOTAVAIL" }))!,
    /no network/,
  );
  assert.equal(bindFailure(new TypeError("invalid certificate")), undefined);
  assert.equal(bindFailure(null), undefined);
});

Deno.test("listen errors: the message names the setting and the address, and keeps the cause", () => {
  const cause = new Deno.errors.AddrInUse("Address already in use (os error 98)");
  const e = listenError("api_bind_addr", "0.0.0.0:3900", cause);
  assert.equal(
    e.message,
    "Cannot listen on 0.0.0.0:3900 (api_bind_addr): the address is already in use " +
      "(by another program, or another remise)",
  );
  assert.equal(e.cause, cause);
  const other = listenError("web_bind_addr", "[::1]:3902", new Error("something else"));
  assert.equal(other.message, "Cannot listen on [::1]:3902 (web_bind_addr): something else");
});
