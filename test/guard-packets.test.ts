import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { closeAllRaw, RawSocketIo } from "./helpers/raw-socketio";
import { SockfleetHost, sourceFixture } from "./helpers/sockfleet";
import { nextEvent, within } from "./helpers/wait";

/** Limit hits of `limit` counted by the host's workers. */
async function hits(host: SockfleetHost, limit: string): Promise<number> {
  return total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit });
}

const nested = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);

describe("packets a client sends are checked before dispatch (max-event-args, max-event-depth, max-attachments)", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  let canary: Client;
  let pid: number;

  before(async () => {
    // One worker: the hostile client and the canary share it. Room for 1 MB packets, so that
    // the shape limits (not the engine's size cap) are what refuses them.
    host = await SockfleetHost.start({ workers: 1, app: sourceFixture("guard-app.cjs"), args: ["--admin-port", "0", "--max-http-buffer-size", "3000000"] });
  });
  beforeEach(async () => {
    canary = await connect(host.url, { transports: ["websocket"] });
    pid = (await whoami(canary)).pid;
  });
  afterEach(() => {
    closeClients([canary]);
    closeAllRaw();
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  /** The canary still gets a broadcast within a second, from the same worker process. */
  async function canaryUnaffected(): Promise<void> {
    const got = nextEvent<[string]>(canary, "chat message", 1_000);
    canary.emit("chat message", "still here");
    assert.equal((await got)[0], "still here");
    assert.equal((await whoami(canary)).pid, pid, "the worker did not restart");
  }

  it("disconnects a client whose event has 100,000 arguments, and the worker and its other clients carry on", async () => {
    const raw = await RawSocketIo.connect(host.port);
    const before = await hits(host, "max-event-args");
    const started = Date.now();
    raw.emitRaw("chat message", Array(100_000).fill("1").join(","));
    await raw.waitClosed(5_000);
    console.log(`      100,000-argument packet: client closed after ${Date.now() - started} ms`);
    await canaryUnaffected();
    assert.equal(await hits(host, "max-event-args"), before + 1);
  });

  it("accepts 64 arguments and refuses 65", async () => {
    const ok = await RawSocketIo.connect(host.port);
    ok.send(`427["echo",${Array(64).fill("0").join(",")}]`);
    const ack = await within("the echo ack", new Promise<string>((resolve) => ok.ws.on("message", (m) => String(m).startsWith("437[") && resolve(String(m)))), 5_000);
    assert.equal((JSON.parse(ack.slice(3)) as unknown[]).length, 64);
    const bad = await RawSocketIo.connect(host.port);
    bad.emitRaw("echo", Array(65).fill("0").join(","));
    await bad.waitClosed(5_000);
    assert.equal(ok.closed, false);
  });

  it("refuses 1 MB of nested brackets before JSON.parse, closed or not, and the worker carries on", async () => {
    const before = await hits(host, "max-event-depth");
    const balanced = await RawSocketIo.connect(host.port);
    balanced.send(`42["chat message",${nested(500_000)}]`);
    const open = await RawSocketIo.connect(host.port);
    open.send(`42["chat message",${"[".repeat(1_000_000)}`);
    await balanced.waitClosed(5_000);
    await open.waitClosed(5_000);
    await canaryUnaffected();
    assert.equal(await hits(host, "max-event-depth"), before + 2);
  });

  it("counts only brackets outside strings: a text full of brackets and escaped quotes is delivered", async () => {
    const text = `${"[".repeat(100)}\\"${"{".repeat(100)}"\\`;
    const args = [text, { nested: ["]]]", "\\\"[["] }];
    assert.deepEqual(await request(canary, "echo", args), args);
  });

  it("delivers an argument nested 32 deep and refuses one nested 33 deep", async () => {
    const deep32 = JSON.parse(nested(32)) as unknown;
    assert.deepEqual(await request(canary, "echo", deep32), deep32);
    const raw = await RawSocketIo.connect(host.port);
    raw.emitRaw("echo", nested(33));
    await raw.waitClosed(5_000);
    await canaryUnaffected();
  });

  it("refuses a binary packet announcing 11 attachments, and attachments larger than max-http-buffer-size in total", async () => {
    const before = await hits(host, "max-attachments");
    const many = await RawSocketIo.connect(host.port);
    const placeholders = Array.from({ length: 11 }, (_, num) => JSON.stringify({ _placeholder: true, num })).join(",");
    many.send(`4511-["chat message",${placeholders}]`);
    await many.waitClosed(5_000);

    const big = await RawSocketIo.connect(host.port);
    big.send(`453-["chat message",${[0, 1, 2].map((num) => JSON.stringify({ _placeholder: true, num })).join(",")}]`);
    big.send(Buffer.alloc(1_200_000));
    big.send(Buffer.alloc(1_200_000));
    big.send(Buffer.alloc(1_200_000));
    await big.waitClosed(5_000);
    await canaryUnaffected();
    assert.equal(await hits(host, "max-attachments"), before + 2);
  });

  it("closes a connected client that sends a malformed packet without taking the worker down", async () => {
    const raw = await RawSocketIo.connect(host.port);
    raw.send("42garbage");
    await raw.waitClosed(5_000);
    await canaryUnaffected();
  });
});
