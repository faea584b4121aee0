import { parse } from "smol-toml";
import { Command } from "commander";
import { XMLParser } from "fast-xml-parser";
import { S3Client } from "@aws-sdk/client-s3";
import { crc32c } from "@node-rs/crc32";
console.log(parse("a=1"), typeof Command, typeof XMLParser, typeof S3Client, crc32c("abc"));
