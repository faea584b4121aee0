/**
 * Static websites: PutBucketWebsite / GetBucketWebsite / DeleteBucketWebsite
 * through the AWS SDK, then pages fetched from `web_bind_addr` with the Host
 * header naming the bucket, as a browser would.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import {
  CreateBucketCommand,
  DeleteBucketWebsiteCommand,
  GetBucketWebsiteCommand,
  PutBucketCorsCommand,
  PutBucketWebsiteCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { freePort, TestServer } from "./harness.ts";
import { assertConfigurationsRefused, assertS3Error } from "./_s3_helpers.ts";

interface Page {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request to the website port with a Host header of our choosing (fetch would send its own). */
function webRequest(
  port: number,
  host: string,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Page> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        headers: { host, ...options.headers },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => body += chunk);
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

Deno.test("static websites", async (t) => {
  const webPort = freePort();
  const server = await TestServer.start({
    extraConfig: `web_bind_addr = "127.0.0.1:${webPort}"\nweb_root_domain = "web.example"`,
  });
  const owner = await server.createKey("owner");
  const reader = await server.createKey("reader");
  const s3 = server.client(owner);
  const get = (host: string, path: string, headers?: Record<string, string>) =>
    webRequest(webPort, host, path, { headers });
  const put = (bucket: string, key: string, body: string, contentType = "text/html") =>
    s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }),
    );
  try {
    for (const bucket of ["site", "example.org", "private"]) {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    }
    await put("site", "index.html", "<h1>home</h1>");
    await put("site", "about/index.html", "<h1>about</h1>");
    await put("site", "css/style.css", "body{}", "text/css");
    await put("site", "404.html", "<h1>lost</h1>");
    await put("site", "a b/ü.txt", "spaced", "text/plain");
    // Encrypted at rest with a key of its own (SSE-S3): served decrypted.
    await s3.send(
      new PutObjectCommand({
        Bucket: "site",
        Key: "sealed.txt",
        Body: "decrypted for visitors",
        ServerSideEncryption: "AES256",
      }),
    );
    await put("example.org", "index.htm", "org home");
    await put("private", "index.html", "secret");

    await t.step("a bucket without a website configuration is not served", async () => {
      await assertS3Error(
        s3.send(new GetBucketWebsiteCommand({ Bucket: "private" })),
        "NoSuchWebsiteConfiguration",
        404,
      );
      const page = await get("private.web.example", "/");
      assert.equal(page.status, 404);
      assert.match(page.body, /NoSuchWebsiteConfiguration/);
      assert.doesNotMatch(page.body, /secret/);
    });

    await t.step("PutBucketWebsite is refused to a key that does not own the bucket", async () => {
      const other = server.client(reader);
      try {
        await assertS3Error(
          other.send(
            new PutBucketWebsiteCommand({
              Bucket: "site",
              WebsiteConfiguration: { IndexDocument: { Suffix: "index.html" } },
            }),
          ),
          "AccessDenied",
          403,
        );
      } finally {
        other.destroy();
      }
    });

    await t.step("PutBucketWebsite rejects configurations remise cannot serve", async () => {
      const cases: [string, string, number][] = [
        [
          "<WebsiteConfiguration><IndexDocument><Suffix>a/b.html</Suffix></IndexDocument></WebsiteConfiguration>",
          "InvalidArgument",
          400,
        ],
        [
          "<WebsiteConfiguration><ErrorDocument><Key>e.html</Key></ErrorDocument></WebsiteConfiguration>",
          "InvalidArgument",
          400,
        ],
        ...[
          "<Redirect><HostName>x.org</HostName></Redirect>", // routing rules need an index document
          "<Redirect><ReplaceKeyWith>a</ReplaceKeyWith><ReplaceKeyPrefixWith>b</ReplaceKeyPrefixWith></Redirect>",
          "<Redirect><HttpRedirectCode>200</HttpRedirectCode></Redirect>",
          "<Redirect><HttpRedirectCode>abc</HttpRedirectCode></Redirect>",
          "<Condition><HttpErrorCodeReturnedEquals>302</HttpErrorCodeReturnedEquals></Condition><Redirect><HostName>x.org</HostName></Redirect>",
          "<Condition></Condition><Redirect><HostName>x.org</HostName></Redirect>",
          "<Redirect></Redirect>",
          "<Condition><KeyPrefixEquals>a</KeyPrefixEquals></Condition>",
          "<Redirect><Protocol>ftp</Protocol></Redirect>",
          "<Redirect><HostName>x.org/path</HostName></Redirect>",
        ].map((rule, i): [string, string, number] => [
          i === 0
            ? `<WebsiteConfiguration><RedirectAllRequestsTo><HostName>x.org</HostName></RedirectAllRequestsTo><RoutingRules><RoutingRule>${rule}</RoutingRule></RoutingRules></WebsiteConfiguration>`
            : `<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><RoutingRules><RoutingRule>${rule}</RoutingRule></RoutingRules></WebsiteConfiguration>`,
          "InvalidArgument",
          400,
        ]),
        [
          `<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><RoutingRules>${
            "<RoutingRule><Redirect><HostName>x.org</HostName></Redirect></RoutingRule>".repeat(51)
          }</RoutingRules></WebsiteConfiguration>`,
          "InvalidArgument",
          400,
        ],
        [
          "<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><RoutingRules></RoutingRules></WebsiteConfiguration>",
          "MalformedXML",
          400,
        ],
        [
          "<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><RedirectAllRequestsTo><HostName>x.org</HostName></RedirectAllRequestsTo></WebsiteConfiguration>",
          "InvalidArgument",
          400,
        ],
        [
          "<WebsiteConfiguration><RedirectAllRequestsTo><HostName>x.org/path</HostName></RedirectAllRequestsTo></WebsiteConfiguration>",
          "InvalidArgument",
          400,
        ],
        [
          "<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><ErrorDocument><Key></Key></ErrorDocument></WebsiteConfiguration>",
          "InvalidArgument",
          400,
        ],
        [
          "<WebsiteConfiguration><RedirectAllRequestsTo><HostName>x.org</HostName><Protocol>ftp</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>",
          "InvalidArgument",
          400,
        ],
        ["<WebsiteConfiguration><IndexDocument>", "MalformedXML", 400],
        ["<Other/>", "MalformedXML", 400],
      ];
      await assertConfigurationsRefused(server, owner, "site", "website", cases);
      const page = await get("site.web.example", "/");
      assert.equal(page.status, 404, "a refused configuration serves nothing");
    });

    await t.step("PutBucketWebsite then GetBucketWebsite", async () => {
      await s3.send(
        new PutBucketWebsiteCommand({
          Bucket: "site",
          WebsiteConfiguration: {
            IndexDocument: { Suffix: "index.html" },
            ErrorDocument: { Key: "404.html" },
          },
        }),
      );
      const got = await s3.send(new GetBucketWebsiteCommand({ Bucket: "site" }));
      assert.deepEqual(got.IndexDocument, { Suffix: "index.html" });
      assert.deepEqual(got.ErrorDocument, { Key: "404.html" });
      await s3.send(
        new PutBucketWebsiteCommand({
          Bucket: "example.org",
          WebsiteConfiguration: { IndexDocument: { Suffix: "index.htm" } },
        }),
      );
    });

    await t.step("pages are served by host name, index documents for directories", async () => {
      const home = await get("site.web.example", "/");
      assert.equal(home.status, 200);
      assert.equal(home.body, "<h1>home</h1>");
      assert.equal(home.headers["content-type"], "text/html");
      assert.ok(home.headers["etag"]);
      const about = await get("SITE.web.example:80", "/about/");
      assert.equal(about.status, 200, "host names are case-insensitive, the port is ignored");
      assert.equal(about.body, "<h1>about</h1>");
      const css = await get("site.web.example", "/css/style.css");
      assert.equal(css.status, 200);
      assert.equal(css.headers["content-type"], "text/css");
      assert.equal(css.body, "body{}");
      const spaced = await get("site.web.example", "/a%20b/%C3%BC.txt");
      assert.equal(spaced.body, "spaced", "paths are percent-decoded into keys");
      const sealed = await get("site.web.example", "/sealed.txt");
      assert.equal(sealed.body, "decrypted for visitors");
      assert.equal(sealed.headers["x-amz-server-side-encryption"], "AES256");
      const org = await get("example.org", "/");
      assert.equal(org.status, 200, "a bucket named after the host name is served");
      assert.equal(org.body, "org home");
    });

    await t.step("a directory named without its slash is redirected", async () => {
      const page = await get("site.web.example", "/about");
      assert.equal(page.status, 302);
      assert.equal(page.headers["location"], "/about/");
      await s3.send(
        new PutObjectCommand({
          Bucket: "site",
          Key: "old.html",
          Body: "",
          WebsiteRedirectLocation: "/about/",
        }),
      );
      const moved = await get("site.web.example", "/old.html");
      assert.equal(moved.status, 301, "an object with a website redirect location");
      assert.equal(moved.headers["location"], "/about/");
    });

    await t.step("a missing page serves the error document with 404", async () => {
      const page = await get("site.web.example", "/nope.html");
      assert.equal(page.status, 404);
      assert.equal(page.body, "<h1>lost</h1>");
      assert.equal(page.headers["content-type"], "text/html");
      const org = await get("example.org", "/nope");
      assert.equal(org.status, 404);
      assert.match(org.body, /NoSuchKey/, "without an error document, an error page");
      assert.equal(org.headers["content-type"], "text/html; charset=utf-8");
      // The node's /metrics counts pages by method and status, apart from S3 requests.
      const metrics = await (await fetch(`${server.adminEndpoint}/metrics`, {
        headers: { authorization: `Bearer ${server.adminToken}` },
      })).text();
      const count = (labels: string) =>
        Number(
          new RegExp(`^remise_web_requests_total\\{${labels}\\} (\\d+)$`, "m").exec(metrics)?.[1],
        );
      assert.ok(count('operation="GET",status="200"') >= 5, metrics);
      assert.ok(count('operation="GET",status="404"') >= 2, metrics);
    });

    await t.step("ranges, conditionals and HEAD work as on the S3 port", async () => {
      const part = await get("site.web.example", "/index.html", { range: "bytes=4-7" });
      assert.equal(part.status, 206);
      assert.equal(part.body, "home");
      assert.equal(part.headers["content-range"], "bytes 4-7/13");
      const home = await get("site.web.example", "/");
      // If-Range: the range of this very version, else the whole object (RFC 9110).
      const etag = home.headers["etag"] as string;
      const sameVersion = await get("site.web.example", "/index.html", {
        range: "bytes=4-7",
        "if-range": etag,
      });
      assert.equal(sameVersion.status, 206);
      for (const other of ['"another-etag"', `W/${etag}`, "Sat, 01 Jan 2000 00:00:00 GMT"]) {
        const whole = await get("site.web.example", "/index.html", {
          range: "bytes=4-7",
          "if-range": other,
        });
        assert.equal(whole.status, 200, other);
        assert.equal(whole.body, "<h1>home</h1>", other);
      }
      const sameDate = await get("site.web.example", "/index.html", {
        range: "bytes=4-7",
        "if-range": home.headers["last-modified"] as string,
      });
      assert.equal(sameDate.status, 206);
      const cached = await get("site.web.example", "/", {
        "if-none-match": home.headers["etag"] as string,
      });
      assert.equal(cached.status, 304);
      const head = await webRequest(webPort, "site.web.example", "/", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers["content-length"], "13");
      assert.equal(head.body, "");
    });

    await t.step("only GET and HEAD; unknown hosts and bad paths are errors", async () => {
      const post = await webRequest(webPort, "site.web.example", "/", { method: "POST" });
      assert.equal(post.status, 405);
      assert.equal(post.headers["allow"], "GET, HEAD, OPTIONS");
      const del = await webRequest(webPort, "site.web.example", "/index.html", {
        method: "DELETE",
      });
      assert.equal(del.status, 405);
      assert.equal((await get("site.web.example", "/")).status, 200, "nothing was deleted");
      for (const host of ["nobucket.web.example", "web.example", "[::1]:80"]) {
        const page = await get(host, "/");
        assert.equal(page.status, 404, host);
        assert.match(page.body, /NoSuchBucket/, host);
      }
      // Keys are taken as sent, dot segments and backslashes included, as S3 takes them.
      await put("site", "x/../dotted.html", "dotted key");
      await put("site", "win\\path.html", "backslashed key");
      assert.equal((await get("site.web.example", "/x/../dotted.html")).body, "dotted key");
      assert.equal((await get("site.web.example", "/x/%2E%2E/dotted.html")).body, "dotted key");
      assert.equal((await get("site.web.example", "/win%5Cpath.html")).body, "backslashed key");
      assert.equal((await get("site.web.example", "/dotted.html")).status, 404);
      const bad = await get("site.web.example", "/%E0%A4%A");
      assert.equal(bad.status, 400);
      const escaped = await get("site.web.example", "/%3Cscript%3E");
      assert.equal(escaped.status, 404);
      assert.doesNotMatch(escaped.body, /<script>/, "the key is escaped in the error page");
    });

    await t.step("a website may redirect every request to another host", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "old-site" }));
      await s3.send(
        new PutBucketWebsiteCommand({
          Bucket: "old-site",
          WebsiteConfiguration: {
            RedirectAllRequestsTo: { HostName: "www.example.org", Protocol: "https" },
          },
        }),
      );
      const got = await s3.send(new GetBucketWebsiteCommand({ Bucket: "old-site" }));
      assert.deepEqual(got.RedirectAllRequestsTo, {
        HostName: "www.example.org",
        Protocol: "https",
      });
      assert.equal(got.IndexDocument, undefined);
      const page = await get("old-site.web.example", "/blog/post.html?lang=fr");
      assert.equal(page.status, 301);
      assert.equal(page.headers["location"], "https://www.example.org/blog/post.html?lang=fr");
      await s3.send(
        new PutBucketWebsiteCommand({
          Bucket: "old-site",
          WebsiteConfiguration: { RedirectAllRequestsTo: { HostName: "example.net" } },
        }),
      );
      const plain = await get("old-site.web.example", "/");
      assert.equal(plain.headers["location"], "http://example.net/", "the request's protocol");
    });

    await t.step("routing rules redirect by key prefix, or when a page is missing", async () => {
      await s3.send(new CreateBucketCommand({ Bucket: "routed" }));
      await put("routed", "index.html", "home");
      await put("routed", "docs/kept.html", "kept");
      const RoutingRules = [
        {
          Condition: { KeyPrefixEquals: "docs/" },
          Redirect: { ReplaceKeyPrefixWith: "documents/", HttpRedirectCode: "302" },
        },
        {
          Condition: { KeyPrefixEquals: "old/" },
          Redirect: { HostName: "archive.example", Protocol: "https" as const },
        },
        { Condition: { KeyPrefixEquals: "moved" }, Redirect: { ReplaceKeyWith: "new page.html" } },
        {
          Condition: { HttpErrorCodeReturnedEquals: "404", KeyPrefixEquals: "images/" },
          Redirect: { HostName: "images.example", ReplaceKeyPrefixWith: "" },
        },
        {
          Condition: { HttpErrorCodeReturnedEquals: "404" },
          Redirect: { ReplaceKeyWith: "index.html", HttpRedirectCode: "307" },
        },
      ];
      await s3.send(
        new PutBucketWebsiteCommand({
          Bucket: "routed",
          WebsiteConfiguration: { IndexDocument: { Suffix: "index.html" }, RoutingRules },
        }),
      );
      const got = await s3.send(new GetBucketWebsiteCommand({ Bucket: "routed" }));
      assert.deepEqual(got.RoutingRules, RoutingRules);

      const host = "routed.web.example";
      const redirects: [path: string, status: number, location: string][] = [
        // A prefix rule applies before the lookup, even to a page that exists.
        ["/docs/kept.html", 302, `http://${host}/documents/kept.html`],
        ["/old/a/b.html", 301, "https://archive.example/old/a/b.html"],
        ["/moved/x", 301, `http://${host}/new%20page.html`],
        // Error rules apply to missing pages only, the first that matches.
        ["/images/cat.png", 301, "http://images.example/cat.png"],
        ["/nothing.html", 307, `http://${host}/index.html`],
      ];
      for (const [path, status, location] of redirects) {
        const page = await get(host, path);
        assert.equal(page.status, status, path);
        assert.equal(page.headers["location"], location, path);
      }
      const home = await get(host, "/");
      assert.equal(home.status, 200, "a page that exists, and no prefix rule, is served");
      assert.equal(home.body, "home");

      // remise's own website command changes the documents and keeps the rules.
      const info = await (await server.admin("GET", "/v1/buckets/routed")).json();
      assert.equal(info.website.routingRules, RoutingRules.length);
      const set = await server.admin("PUT", "/v1/buckets/routed/website", {
        indexDocument: "index.html",
        errorDocument: "404.html",
      });
      assert.equal(set.status, 200);
      assert.equal((await set.json()).website.routingRules, RoutingRules.length);
      const after = await s3.send(new GetBucketWebsiteCommand({ Bucket: "routed" }));
      assert.deepEqual(after.RoutingRules, RoutingRules);
      assert.deepEqual(after.ErrorDocument, { Key: "404.html" });
    });

    await t.step("the bucket's CORS rules apply to its pages", async () => {
      const origin = "https://fonts.example";
      const preflight = () =>
        webRequest(webPort, "site.web.example", "/css/style.css", {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "GET" },
        });
      assert.equal((await preflight()).status, 403, "no CORS rules yet");
      await s3.send(
        new PutBucketCorsCommand({
          Bucket: "site",
          CORSConfiguration: { CORSRules: [{ AllowedOrigins: ["*"], AllowedMethods: ["GET"] }] },
        }),
      );
      const allowed = await preflight();
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers["access-control-allow-origin"], "*");
      const page = await get("site.web.example", "/css/style.css", { origin });
      assert.equal(page.body, "body{}");
      assert.equal(page.headers["access-control-allow-origin"], "*");
      const plain = await get("site.web.example", "/css/style.css");
      assert.equal(plain.headers["access-control-allow-origin"], undefined);
    });

    await t.step("DeleteBucketWebsite stops serving the bucket", async () => {
      await s3.send(new DeleteBucketWebsiteCommand({ Bucket: "site" }));
      await assertS3Error(
        s3.send(new GetBucketWebsiteCommand({ Bucket: "site" })),
        "NoSuchWebsiteConfiguration",
        404,
      );
      const page = await get("site.web.example", "/");
      assert.equal(page.status, 404);
      assert.match(page.body, /NoSuchWebsiteConfiguration/);
      const again = await s3.send(new DeleteBucketWebsiteCommand({ Bucket: "site" }));
      assert.equal(again.$metadata.httpStatusCode, 204, "deleting an absent configuration");
    });

    await t.step("the configuration survives a restart", async () => {
      await server.restart();
      const page = await get("example.org", "/");
      assert.equal(page.status, 200);
      assert.equal(page.body, "org home");
    });
  } finally {
    s3.destroy();
    await server.close();
  }
});
