/**
 * CORS through the AWS SDK and as a browser sends it: PutBucketCors /
 * GetBucketCors / DeleteBucketCors, preflight requests (OPTIONS, without
 * credentials) and the Access-Control-* headers of answers to requests that
 * carry an Origin.
 */
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  DeleteBucketCorsCommand,
  GetBucketCorsCommand,
  PutBucketCorsCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { withTwoKeys } from "./harness.ts";
import {
  assertConfigurationsRefused,
  assertErrorResponse,
  assertS3Error,
  objectPath,
  signedFetch,
} from "./_s3_helpers.ts";

const APP = "https://app.example";

Deno.test("S3 CORS", (t) =>
  withTwoKeys(async ({ server, owner, s3, s3Other }) => {
    const preflight = (path: string, headers: Record<string, string>) =>
      fetch(`${server.endpoint}${path}`, { method: "OPTIONS", headers });
    for (const bucket of ["app", "plain"]) {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "a.txt", Body: "hello" }));
    }

    await t.step("PutBucketCors then GetBucketCors gives the rules back", async () => {
      await s3.send(
        new PutBucketCorsCommand({
          Bucket: "app",
          CORSConfiguration: {
            CORSRules: [
              {
                ID: "app",
                AllowedOrigins: [APP, "https://*.app.example"],
                AllowedMethods: ["GET", "PUT"],
                AllowedHeaders: ["Content-Type", "x-amz-*"],
                ExposeHeaders: ["ETag"],
                MaxAgeSeconds: 600,
              },
              { AllowedOrigins: ["*"], AllowedMethods: ["GET", "HEAD"] },
            ],
          },
        }),
      );
      const got = await s3.send(new GetBucketCorsCommand({ Bucket: "app" }));
      assert.deepEqual(got.CORSRules, [
        {
          ID: "app",
          AllowedOrigins: [APP, "https://*.app.example"],
          AllowedMethods: ["GET", "PUT"],
          AllowedHeaders: ["content-type", "x-amz-*"],
          ExposeHeaders: ["ETag"],
          MaxAgeSeconds: 600,
        },
        { AllowedOrigins: ["*"], AllowedMethods: ["GET", "HEAD"] },
      ]);
    });

    await t.step("remise bucket info counts the rules", async () => {
      const info = await (await server.admin("GET", "/v1/buckets/app")).json();
      assert.equal(info.corsRules, 2);
    });

    await t.step("invalid configurations are refused and change nothing", async () => {
      const rule = (inner: string) =>
        `<CORSConfiguration><CORSRule>${inner}</CORSRule></CORSConfiguration>`;
      const cases: [string, string, number][] = [
        [
          rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"),
          "InvalidRequest",
          400,
        ],
        [
          rule("<AllowedOrigin>https://*.*.x</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"),
          "InvalidRequest",
          400,
        ],
        [rule("<AllowedMethod>GET</AllowedMethod>"), "MalformedXML", 400],
        [
          rule(
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds>",
          ),
          "MalformedXML",
          400,
        ],
        ["<CORSConfiguration></CORSConfiguration>", "MalformedXML", 400],
        [
          rule(
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ExposeHeader>x&#10;y</ExposeHeader>",
          ),
          "InvalidRequest",
          400,
        ],
        ["<CORSConfiguration><CORSRule>", "MalformedXML", 400],
      ];
      await assertConfigurationsRefused(server, owner, "app", "cors", cases);
      await assertS3Error(
        s3Other.send(
          new PutBucketCorsCommand({
            Bucket: "app",
            CORSConfiguration: { CORSRules: [{ AllowedOrigins: ["*"], AllowedMethods: ["PUT"] }] },
          }),
        ),
        "AccessDenied",
        403,
      );
      const got = await s3.send(new GetBucketCorsCommand({ Bucket: "app" }));
      assert.equal(got.CORSRules?.length, 2);
      assert.equal(got.CORSRules?.[0].ID, "app");
    });

    await t.step("a preflight allowed by a rule gets its headers", async () => {
      const res = await preflight("/app/a.txt", {
        origin: APP,
        "access-control-request-method": "PUT",
        "access-control-request-headers": "Content-Type, X-Amz-Date",
      });
      assert.equal(res.status, 200, await res.text());
      assert.equal(res.headers.get("access-control-allow-origin"), APP);
      assert.equal(res.headers.get("access-control-allow-credentials"), "true");
      assert.equal(res.headers.get("access-control-allow-methods"), "GET, PUT");
      assert.equal(res.headers.get("access-control-allow-headers"), "content-type, x-amz-date");
      assert.equal(res.headers.get("access-control-expose-headers"), "ETag");
      assert.equal(res.headers.get("access-control-max-age"), "600");

      const sub = await preflight("/app/a.txt", {
        origin: "https://eu.app.example",
        "access-control-request-method": "GET",
      });
      assert.equal(sub.status, 200, "a wildcard origin matches");
      assert.equal(sub.headers.get("access-control-allow-origin"), "https://eu.app.example");
      await sub.body?.cancel();

      const any = await preflight("/app", {
        origin: "https://elsewhere.example",
        "access-control-request-method": "GET",
      });
      assert.equal(any.status, 200);
      assert.equal(any.headers.get("access-control-allow-origin"), "*");
      assert.equal(any.headers.get("access-control-allow-credentials"), null);
      await any.body?.cancel();
    });

    await t.step("a preflight no rule allows is 403, an incomplete one 400", async () => {
      const cases: [string, Record<string, string>, number, string][] = [
        [
          "/app/a.txt",
          { origin: "https://elsewhere.example", "access-control-request-method": "PUT" },
          403,
          "AccessForbidden",
        ],
        [
          "/app/a.txt",
          { origin: APP, "access-control-request-method": "DELETE" },
          403,
          "AccessForbidden",
        ],
        [
          "/app/a.txt",
          {
            origin: APP,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "x-custom",
          },
          403,
          "AccessForbidden",
        ],
        [
          "/plain/a.txt",
          { origin: APP, "access-control-request-method": "GET" },
          403,
          "AccessForbidden",
        ],
        [
          "/no-such-bucket/a",
          { origin: APP, "access-control-request-method": "GET" },
          403,
          "AccessForbidden",
        ],
        ["/app/a.txt", { origin: APP }, 400, "InvalidRequest"],
        ["/app/a.txt", { "access-control-request-method": "GET" }, 400, "InvalidRequest"],
      ];
      for (const [path, headers, status, code] of cases) {
        const res = await preflight(path, headers);
        assert.equal(res.headers.get("access-control-allow-origin"), null, JSON.stringify(headers));
        await assertErrorResponse(res, status, code).catch((e) => {
          throw new Error(`${path} ${JSON.stringify(headers)}: ${e.message}`);
        });
      }
    });

    await t.step("answers to requests with an Origin carry the rule's headers", async () => {
      const get = (bucket: string, key: string, headers: Record<string, string>) =>
        signedFetch(server, owner, { method: "GET", path: objectPath(bucket, key), headers });
      const allowed = await get("app", "a.txt", { origin: APP });
      assert.equal(await allowed.text(), "hello");
      assert.equal(allowed.headers.get("access-control-allow-origin"), APP);
      assert.equal(allowed.headers.get("access-control-expose-headers"), "ETag");
      // The rule's methods and max age too, as S3 answers (s3-tests checks the methods).
      assert.equal(allowed.headers.get("access-control-allow-methods"), "GET, PUT");
      assert.equal(allowed.headers.get("access-control-max-age"), "600");
      assert.match(allowed.headers.get("vary") ?? "", /Origin/);
      const missing = await get("app", "nope", { origin: APP });
      assert.equal(missing.headers.get("access-control-allow-origin"), APP, "errors too");
      await assertErrorResponse(missing, 404, "NoSuchKey");
      const noOrigin = await get("app", "a.txt", {});
      assert.equal(noOrigin.headers.get("access-control-allow-origin"), null);
      await noOrigin.body?.cancel();
      const plain = await get("plain", "a.txt", { origin: APP });
      assert.equal(plain.headers.get("access-control-allow-origin"), null, "no rules, no headers");
      await plain.body?.cancel();
      const del = await signedFetch(server, owner, {
        method: "DELETE",
        path: objectPath("app", "gone"),
        headers: { origin: APP },
      });
      assert.equal(del.status, 204);
      assert.equal(del.headers.get("access-control-allow-origin"), null, "DELETE is not allowed");
    });

    await t.step("DeleteBucketCors removes the rules", async () => {
      await assertS3Error(
        s3Other.send(new DeleteBucketCorsCommand({ Bucket: "app" })),
        "AccessDenied",
        403,
      );
      await s3.send(new DeleteBucketCorsCommand({ Bucket: "app" }));
      await assertS3Error(
        s3.send(new GetBucketCorsCommand({ Bucket: "app" })),
        "NoSuchCORSConfiguration",
        404,
      );
      const res = await preflight("/app/a.txt", {
        origin: APP,
        "access-control-request-method": "GET",
      });
      await assertErrorResponse(res, 403, "AccessForbidden");
    });
  }));
