import assert from "node:assert/strict";
import { loadConfig } from "../src/config/load";
import { createLogger } from "../src/observability/logger";
import { FeedLogReader, parseFeedFrame } from "../src/tiers/redis/feed-reader";
import { SingleNodeTransport } from "../src/tiers/redis/single-node-transport";
import type { TransportSide } from "../src/tiers/redis/transport";
import { RedisServer } from "./helpers/redis";
import { waitUntil } from "./helpers/wait";

const KEY = "feedtest-sockfleet#log";
const FEED = "feedtest-sockfleet#log#feed#";

/** One host's view of the shared log: its transport, its feed reader, and what it was handed. */
class Host {
  readonly handed: string[] = [];
  readonly payloads = new Map<string, string>();
  followed?: string;
  readable = false;
  readonly reader: FeedLogReader;
  private readonly transport: SingleNodeTransport;

  constructor(redisUrl: string, name: string) {
    const result = loadConfig(["--redis", redisUrl, "--host-id", name], {});
    if (result.help) throw new Error("unexpected --help");
    const logger = createLogger("silent", {});
    let reader: FeedLogReader | undefined;
    this.transport = new SingleNodeTransport(result.config, logger, {
      onStatus: (side: TransportSide, up: boolean) => {
        if (side === "sub" && !up) reader?.subscriberDown();
      },
      subscriberOutputBuffer: () => 0,
    });
    reader = new FeedLogReader(KEY, FEED, `${FEED}sync#${Math.random().toString(36).slice(2)}#`, "PUBLISH", this.transport, {
      follow: (id) => (this.followed = id),
      entry: (id, fields) => {
        this.handed.push(id);
        this.payloads.set(id, fields[1].toString());
      },
      readable: (up) => (this.readable = up),
    }, logger);
    this.reader = reader;
  }

  async close(): Promise<void> {
    await this.reader.close();
    await this.transport.close();
  }
}

describe("the shared log's feed (one Redis node)", () => {
  let redis: RedisServer;
  let hosts: Host[] = [];

  beforeEach(async () => {
    redis = await RedisServer.start();
  });

  afterEach(async () => {
    await Promise.all(hosts.map((host) => host.close()));
    hosts = [];
    await redis.stop();
  });

  it("hands every entry appended after it started once, in stream order, while Redis keeps cutting its subscriber", async function () {
    this.timeout(60_000);
    const writer = new Host(redis.url, "writer");
    const reader = new Host(redis.url, "reader");
    hosts = [writer, reader];
    await waitUntil("both feeds live", () => writer.readable && reader.readable, 10_000);
    const appended: string[] = [];
    for (let round = 0; round < 8; round++) {
      const ids = await Promise.all(Array.from({ length: 250 }, (_, i) => writer.reader.append(["v", `${round}:${i}`], 100_000)));
      appended.push(...ids);
      // Cut every subscriber mid-stream: what is published until the new one is confirmed comes by XRANGE.
      const cut = redis.command("CLIENT", "KILL", "TYPE", "pubsub");
      appended.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => writer.reader.append(["v", `${round}:cut:${i}`], 100_000)))));
      await cut;
    }
    await waitUntil("the reader to be handed every entry", () => reader.handed.length >= appended.length && reader.readable, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 200)); // a duplicate would arrive right behind
    assert.deepEqual(reader.handed, appended, "every entry once, in the order XADD gave their ids");
    assert.deepEqual(writer.handed, appended);
    const stored = (await redis.command("XLEN", KEY)) as number;
    assert.equal(stored, appended.length);
    assert.equal(reader.payloads.get(appended[0]), "0:0");
  });

  it("starts from the stream's end: entries appended before a host started are not handed to it", async function () {
    this.timeout(30_000);
    const early = new Host(redis.url, "early");
    hosts = [early];
    await waitUntil("the first feed live", () => early.readable, 10_000);
    const before = await early.reader.append(["v", "before"], 1000);
    const late = new Host(redis.url, "late");
    hosts.push(late);
    await waitUntil("the second feed live", () => late.readable, 10_000);
    assert.equal(late.followed, before);
    const after = await early.reader.append(["v", "after"], 1000);
    await waitUntil("the entry after it started", () => late.handed.length === 1, 10_000);
    assert.deepEqual(late.handed, [after]);
  });

  it("ignores a malformed frame on the feed and goes on with the next entry", async function () {
    this.timeout(30_000);
    const host = new Host(redis.url, "host");
    hosts = [host];
    await waitUntil("the feed live", () => host.readable, 10_000);
    await redis.command("PUBLISH", FEED, "99999999999:not a frame");
    const id = await host.reader.append(["v", "next"], 1000);
    await waitUntil("the next entry", () => host.handed.length === 1, 10_000);
    assert.deepEqual(host.handed, [id]);
  });

  it("parses a frame of an id and field/value pairs, and refuses truncated or unframed bytes", () => {
    const frame = Buffer.concat([Buffer.from("3:1-05:field"), Buffer.from("4:"), Buffer.from([0, 58, 255, 10])]);
    const parsed = parseFeedFrame(frame);
    assert.ok(parsed);
    assert.equal(parsed[0], "1-0");
    assert.deepEqual(parsed[1], [Buffer.from("field"), Buffer.from([0, 58, 255, 10])]);
    assert.equal(parseFeedFrame(Buffer.from("3:1-05:fie")), undefined, "truncated value");
    assert.equal(parseFeedFrame(Buffer.from("3:1-0")), undefined, "a field without its value");
    assert.equal(parseFeedFrame(Buffer.from("x:1-0")), undefined, "no length");
    assert.equal(parseFeedFrame(Buffer.from("")), undefined, "empty");
  });
});
