import assert from "node:assert/strict";
import { parseXmlText } from "./xml.ts";
import { S3Error } from "./s3_error.ts";

const keyOf = (xml: string) =>
  ((parseXmlText(xml).Delete as Record<string, unknown>).Object as Record<string, unknown>).Key;
const deleting = (key: string) => `<Delete><Object><Key>${key}</Key></Object></Delete>`;

function assertMalformed(xml: string): void {
  assert.throws(
    () => parseXmlText(xml),
    (e) => e instanceof S3Error && e.code === "MalformedXML",
    `refused: ${JSON.stringify(xml)}`,
  );
}

Deno.test("XML's own references are decoded, to any character XML allows", () => {
  assert.equal(keyOf(deleting("a&amp;b&lt;c&gt;d&quot;e&apos;f")), "a&b<c>d\"e'f");
  assert.equal(keyOf(deleting("line&#13;&#xA;break&#9;tab")), "line\r\nbreak\ttab");
  assert.equal(keyOf(deleting("&#x1F600;&#233;")), "\u{1F600}\u00e9");
  assert.equal(keyOf(deleting("caf\u00e9 \u{1F600}")), "caf\u00e9 \u{1F600}");
});

Deno.test("a reference or character XML does not allow is MalformedXML, never another key", () => {
  // The parser would drop these characters: `a&#x1;b` would name the key `ab`.
  for (const ref of ["&#x1;", "&#0;", "&#xD800;", "&#xFFFE;", "&#1114112;", "&#x;", "&#12a;"]) {
    assertMalformed(deleting(`a${ref}b`));
  }
  // HTML's entities and undeclared ones are not XML's.
  for (const ref of ["&nbsp;", "&copy;", "&bogus;", "& b", "&amp"]) {
    assertMalformed(deleting(`a${ref}b`));
  }
  // Raw characters XML cannot hold, lone surrogates included.
  for (const c of ["\u0001", "\u0000", "\u001f", "\ufffe", "\ud800", "\udc00"]) {
    assertMalformed(deleting(`a${c}b`));
  }
});

Deno.test("a document type declaration is MalformedXML: its entities would stand for other keys", () => {
  assertMalformed(
    `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY k "r.txt">]>${deleting("&k;")}`,
  );
  assertMalformed(`<!doctype Delete>${deleting("k")}`);
});

Deno.test("text that is not parsed for references may hold an ampersand", () => {
  assert.equal(keyOf(deleting("<![CDATA[a<b&c]]>")), "a<b&c");
  assert.equal(
    keyOf(`<?xml version="1.0" encoding="UTF-8"?><!-- a & b -->${deleting("k&amp;")}`),
    "k&",
  );
  assertMalformed(deleting("<![CDATA[a&b"));
});
