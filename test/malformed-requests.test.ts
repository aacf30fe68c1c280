import assert from "node:assert/strict";
import net from "node:net";
import { closeClients, connect, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { SockfleetHost } from "./helpers/sockfleet";

/** Sends one raw request head and resolves with the status line of the answer ("" when closed without one). */
function rawRequest(port: number, head: string, ms = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${ms} ms to ${JSON.stringify(head.slice(0, 40))}`));
    }, ms);
    socket.on("connect", () => socket.write(head));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      if (answer.includes("\r\n")) socket.destroy();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(answer.split("\r\n")[0]);
    });
  });
}

const TARGETS = ["//[", "//a:99999/", "//%zz", "//[::1", "/%", "*", "http://[/x"];

describe("malformed request targets", function () {
  this.timeout(60_000);
  let host: SockfleetHost;
  let adminPort: number;
  let clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--admin-port", "0"] });
    adminPort = host.logs.find((l) => l.msg === "ready")!.adminPort as number;
  });
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("are answered 400 on the public port, and no worker exits however often they come", async () => {
    const pids = host.workerPids();
    for (let round = 0; round < 30; round++) {
      for (const target of TARGETS) {
        const status = await rawRequest(host.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
        assert.match(status, /^HTTP\/1\.1 (400|404)/, `GET ${target}`);
      }
    }
    assert.deepEqual(host.workerPids().sort(), pids.sort(), "the same workers serve");
    assert.equal(host.logs.filter((l) => l.msg === "worker crashed").length, 0);
    const samples = await scrapeAdmin(host);
    assert.equal(total(samples, "sockfleet_worker_restarts_total", { reason: "crash" }), 0);
    assert.ok(total(samples, "sockfleet_limit_hits_total", { limit: "malformed-request" }) >= 30, "counted");
  });

  it("are answered 400 on the admin port, and the primary keeps serving", async () => {
    for (const target of TARGETS) {
      const status = await rawRequest(adminPort, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.match(status, /^HTTP\/1\.1 (400|404)/, `GET ${target}`);
    }
    assert.equal(host.child.exitCode, null);
    const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
    assert.equal(res.status, 200);
  });

  it("leave clients connected meanwhile served", async () => {
    const client = await connect(host.url, { transports: ["websocket"] });
    clients.push(client);
    const before = await whoami(client);
    for (const target of TARGETS) await rawRequest(host.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.deepEqual(await whoami(client), before);
  });
});
