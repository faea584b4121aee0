/** S3's rules for bucket names (general purpose buckets). */

/** Prefixes and suffixes S3 keeps for its own names (access points, directory buckets, tables...). */
const RESERVED_PREFIXES = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/** Why `name` is not a valid bucket name, or undefined when it is. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "must be between 3 and 63 characters long";
  if (!/^[a-z0-9.-]+$/.test(name)) {
    return "may contain only lowercase letters, digits, dots (.) and hyphens (-)";
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) {
    return "must begin and end with a letter or a digit";
  }
  if (name.includes("..")) return "must not contain two adjacent dots";
  if (name.includes(".-") || name.includes("-.")) return "must not contain a dot next to a hyphen";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "must not be formatted as an IP address";
  if (RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
    return "must not start with a reserved prefix";
  }
  if (RESERVED_SUFFIXES.some((suffix) => name.endsWith(suffix))) {
    return "must not end with a reserved suffix";
  }
  return undefined;
}
