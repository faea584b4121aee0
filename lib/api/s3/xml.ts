/** Building S3 XML responses and parsing S3 XML request bodies. */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { S3Error, s3Errors } from "./s3_error.ts";
import { XML_BODY_MAX_BYTES } from "../../util/limits.ts";
import { readBounded } from "../../util/read_bounded.ts";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

// deno-lint-ignore no-control-regex
const XML_SPECIAL = /[&<>"'\u0000-\u001f\u007f]/;
const XML_SPECIAL_ALL = new RegExp(XML_SPECIAL.source, "g");

/**
 * Escapes text for XML. Line breaks and other control characters become
 * character references, so parsers do not normalise them away.
 */
export function xmlEscape(text: string): string {
  // Most text has nothing to escape: testing first spares building a copy.
  if (!XML_SPECIAL.test(text)) return text;
  return text.replace(XML_SPECIAL_ALL, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case '"':
        return "&quot;";
      case "'":
        return "&apos;";
      default:
        return `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`;
    }
  });
}

/**
 * Elements already rendered, inserted as they are in place of the element
 * they are given for: long lists render faster in a loop written for them.
 */
export class XmlFragment {
  constructor(readonly xml: string) {}
}

/** A tree of elements: strings, numbers and booleans are text; arrays repeat the element. */
export type XmlValue = string | number | boolean | undefined | XmlNode | XmlFragment | XmlValue[];
export interface XmlNode {
  [name: string]: XmlValue;
}

function render(name: string, value: XmlValue, out: string[]): void {
  if (value === undefined) return;
  if (value instanceof XmlFragment) {
    out.push(value.xml);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) render(name, v, out);
    return;
  }
  if (typeof value === "object") {
    out.push(`<${name}>`);
    for (const [child, v] of Object.entries(value)) render(child, v, out);
    out.push(`</${name}>`);
    return;
  }
  out.push(`<${name}>${xmlEscape(String(value))}</${name}>`);
}

/** A complete XML document with the S3 namespace on its root element. */
export function xmlDocument(root: string, body: XmlNode, namespace = true): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  out.push(namespace ? `<${root} xmlns="${S3_XMLNS}">` : `<${root}>`);
  for (const [name, v] of Object.entries(body)) render(name, v, out);
  out.push(`</${root}>`);
  return out.join("");
}

export function xmlResponse(root: string, body: XmlNode, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/xml");
  return new Response(xmlDocument(root, body), { ...init, headers });
}

export function errorResponse(
  error: S3Error,
  resource: string,
  requestId: string,
  head: boolean,
): Response {
  const headers = new Headers({
    ...error.headers,
    "content-type": "application/xml",
    "x-amz-request-id": requestId,
  });
  if (head) return new Response(null, { status: error.status, headers });
  const body = xmlDocument("Error", {
    Code: error.code,
    Message: error.message,
    ...error.extra,
    Resource: resource,
    RequestId: requestId,
  }, false);
  return new Response(body, { status: error.status, headers });
}

/** Reads a small XML request body (bounded) and parses it; malformed XML is MalformedXML. */
export async function readXmlBody(
  body: ReadableStream<Uint8Array> | null,
): Promise<Record<string, unknown>> {
  return parseXmlText(await readBoundedText(body, XML_BODY_MAX_BYTES));
}

/** A request body of at most `max` bytes (a larger one is MaxMessageLengthExceeded). */
export async function readBoundedBytes(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<Uint8Array> {
  return body ? await readBounded(body, max, tooBig(max)) : new Uint8Array(0);
}

/**
 * Parses an XML request document; malformed XML is MalformedXML, as is what
 * XML 1.0 forbids and the parser would let through: a document type
 * declaration (its entities would stand for other text), entities other than
 * XML's five (HTML's), and characters XML cannot hold, raw or as references
 * (the parser drops `&#x1;`, so a DeleteObjects naming `a&#x1;b` would delete
 * `ab`).
 */
export function parseXmlText(text: string): Record<string, unknown> {
  if (
    text.trim() === "" || !holdsOnlyXmlText(text) || XMLValidator.validate(text) !== true
  ) {
    throw s3Errors.malformedXml();
  }
  const parser = new XMLParser({
    ignoreAttributes: true,
    removeNSPrefix: true,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    // Also decodes numeric character references (&#xA;), which clients use for line breaks in keys.
    htmlEntities: true,
  });
  try {
    return parser.parse(text) as Record<string, unknown>;
  } catch {
    throw s3Errors.malformedXml();
  }
}

const NOT_XML_CHAR =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** The next reference, or markup whose text is not parsed for references (CDATA, comment, processing instruction). */
const NEXT_REFERENCE_OR_UNPARSED = /&|<!\[CDATA\[|<!--|<\?/g;
const UNPARSED_END: Record<string, string> = { "<![CDATA[": "]]>", "<!--": "-->", "<?": "?>" };
const REFERENCE = /&(?:(lt|gt|amp|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));/y;

/** A code point that XML 1.0 allows in a document (its production `Char`). */
function isXmlChar(c: number): boolean {
  return c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) ||
    (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

/**
 * Whether `text` has only characters XML allows, no document type
 * declaration, and only XML's own references, to allowed characters.
 */
function holdsOnlyXmlText(text: string): boolean {
  if (NOT_XML_CHAR.test(text) || /<!DOCTYPE/i.test(text)) return false;
  const next = new RegExp(NEXT_REFERENCE_OR_UNPARSED);
  for (let found = next.exec(text); found !== null; found = next.exec(text)) {
    if (found[0] !== "&") {
      const end = text.indexOf(UNPARSED_END[found[0]], next.lastIndex);
      if (end < 0) return false;
      next.lastIndex = end;
      continue;
    }
    REFERENCE.lastIndex = found.index;
    const ref = REFERENCE.exec(text);
    if (ref === null) return false;
    if (ref[1] === undefined && !isXmlChar(parseInt(ref[2] ?? ref[3], ref[2] ? 10 : 16))) {
      return false;
    }
    next.lastIndex = REFERENCE.lastIndex;
  }
  return true;
}

const tooBig = (max: number) => () =>
  new S3Error("MaxMessageLengthExceeded", 400, `Your request was too big (over ${max} bytes).`);

async function readBoundedText(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<string> {
  return new TextDecoder().decode(await readBoundedBytes(body, max));
}

/** An element that may appear once or many times, as a list. */
export function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * A parsed element's children ({} for an empty element), or undefined when
 * it is absent; text or a repeated element where one element belongs is
 * MalformedXML.
 */
export function xmlElement(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value === "") return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw s3Errors.malformedXml();
  }
  return value as Record<string, unknown>;
}

/** The text of `parent`'s child `name`, undefined when absent; anything but one text is MalformedXML. */
export function xmlText(parent: Record<string, unknown>, name: string): string | undefined {
  const value = parent[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw s3Errors.malformedXml();
  return value;
}

/** The texts of `parent`'s child `name`, which may be repeated; anything but text is MalformedXML. */
export function xmlTexts(parent: Record<string, unknown>, name: string): string[] {
  const values = asList(parent[name]);
  if (values.some((v) => typeof v !== "string")) throw s3Errors.malformedXml();
  return values as string[];
}
