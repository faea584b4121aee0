/**
 * The Ruby AWS SDK (Debian's `ruby-aws-sdk-s3`), which Mastodon stores its
 * media with, as a separate process against a real `remise server`: uploads
 * the way Mastodon makes them (public-read ACL, cache headers), a multipart
 * `upload_file`, presigned URLs, copies, listings, batch deletes, SSE-S3 and
 * the SDK's error classes. Its own HOME and nothing inherited.
 */
import assert from "node:assert/strict";
import { cleanClientEnv, runProgram, withServer } from "./harness.ts";

const RUBY = "/usr/bin/ruby";

const MASTODON_ROUND = `
require "aws-sdk-s3"
require "net/http"
require "digest"

def check(what)
  raise "failed: #{what}" unless yield
end

s3 = Aws::S3::Client.new(
  endpoint: ENV.fetch("ENDPOINT"), region: "test-region", force_path_style: true,
  access_key_id: ENV.fetch("KEY_ID"), secret_access_key: ENV.fetch("SECRET"),
  retry_limit: 0,
)
puts "aws-sdk-s3 #{Aws::S3::GEM_VERSION}"
bucket = "mastodon-media"
s3.create_bucket(bucket: bucket)

# A media attachment, as Mastodon's Paperclip storage writes one.
image = Random.new(7).bytes(300_000)
key = "media_attachments/files/109/000/001/original/photo.png"
s3.put_object(bucket: bucket, key: key, body: image, acl: "public-read",
  content_type: "image/png", cache_control: "public, max-age=315576000, immutable")
head = s3.head_object(bucket: bucket, key: key)
check("head") { head.content_length == image.bytesize && head.content_type == "image/png" }
check("cache-control") { head.cache_control == "public, max-age=315576000, immutable" }
check("etag") { head.etag == %("#{Digest::MD5.hexdigest(image)}") }
# Bodies come back tagged with the default external encoding: compare bytes.
check("get") { s3.get_object(bucket: bucket, key: key).body.read.b == image }
check("range") { s3.get_object(bucket: bucket, key: key, range: "bytes=10-19").body.read.b == image[10, 10] }

# A large file through the resource API: a multipart upload.
path = File.join(ENV.fetch("HOME"), "video.mp4")
video = Random.new(8).bytes(12 * 1024 * 1024 + 5)
File.binwrite(path, video)
object = Aws::S3::Resource.new(client: s3).bucket(bucket).object("cache/video.mp4")
object.upload_file(path, multipart_threshold: 5 * 1024 * 1024)
check("multipart etag") { object.etag.match?(/-\\d+"\\z/) }
check("multipart body") { Digest::MD5.hexdigest(s3.get_object(bucket: bucket, key: "cache/video.mp4").body.read) == Digest::MD5.hexdigest(video) }

# A presigned URL, fetched without the SDK; one for another key is refused.
url = object.presigned_url(:get, expires_in: 300)
response = Net::HTTP.get_response(URI(url))
check("presigned") { response.code == "200" && Digest::MD5.hexdigest(response.body) == Digest::MD5.hexdigest(video) }
check("presigned other key") { Net::HTTP.get_response(URI(url.sub("video.mp4", "other.mp4"))).code == "403" }

# Copies, listings, SSE-S3.
s3.copy_object(bucket: bucket, key: "media_attachments/copy.png", copy_source: "#{bucket}/#{key}")
listed = s3.list_objects_v2(bucket: bucket, prefix: "media_attachments/", delimiter: "/")
check("listing") { listed.contents.map(&:key) == ["media_attachments/copy.png"] && listed.common_prefixes.map(&:prefix) == ["media_attachments/files/"] }
sealed = s3.put_object(bucket: bucket, key: "sealed", body: "at rest", server_side_encryption: "AES256")
check("sse-s3") { sealed.server_side_encryption == "AES256" && s3.get_object(bucket: bucket, key: "sealed").body.read == "at rest" }

# The SDK's error classes.
begin
  s3.get_object(bucket: bucket, key: "missing")
  raise "no error for a missing key"
rescue Aws::S3::Errors::NoSuchKey
end
begin
  s3.delete_bucket(bucket: bucket)
  raise "a bucket with objects was deleted"
rescue Aws::S3::Errors::BucketNotEmpty
end

# Mastodon removes media in batches.
keys = s3.list_objects_v2(bucket: bucket).contents.map(&:key)
deleted = s3.delete_objects(bucket: bucket, delete: { objects: keys.map { |k| { key: k } } })
check("batch delete") { deleted.deleted.map(&:key).sort == keys.sort && deleted.errors.empty? }
s3.delete_bucket(bucket: bucket)
puts "all ok"
`;

Deno.test("Ruby aws-sdk-s3 (Mastodon's): media uploads, multipart, presigned URLs, batch deletes", async () => {
  await withServer(async (server, _s3, credentials) => {
    const { env, home } = await cleanClientEnv({
      ENDPOINT: server.endpoint,
      KEY_ID: credentials.accessKeyId,
      SECRET: credentials.secretAccessKey,
    });
    try {
      await Deno.writeTextFile(`${home}/mastodon_round.rb`, MASTODON_ROUND);
      const result = await runProgram(RUBY, [`${home}/mastodon_round.rb`], env);
      assert.equal(result.code, 0, `ruby failed:\n${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /^aws-sdk-s3 1\.\d+/m);
      assert.match(result.stdout, /^all ok$/m);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
});
