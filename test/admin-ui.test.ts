import assert from "node:assert/strict";
import { closeClients, connect, type Client } from "./helpers/clients";
import { runCli, SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

/** bcrypt hash (cost 4, to keep the test fast) of the password "s3cret". */
const HASH = "$2a$04$LY/fBb5yiqxQ8vR8DPSeC..2nRBEsooy.gZ0Oboxe2UylKvEWXabK";

describe("Socket.IO Admin UI", function () {
  this.timeout(60_000);
  let clients: Client[] = [];
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });

  it("shows every worker of the host to one admin connection that gives the right credentials", async () => {
    const host = await SockfleetHost.start({ workers: 3, args: ["--host-id", "edge-9", "--admin-ui-user", "admin", "--admin-ui-password-hash", HASH] });
    try {
      const admin = await connect(`${host.url}/admin`, { auth: { username: "admin", password: "s3cret" }, transports: ["websocket"] });
      clients.push(admin);
      const servers = new Set<string>();
      admin.on("server_stats", (stats: { serverId: string }) => servers.add(stats.serverId));
      // Each worker reports every 2 s; the cluster adapter brings the others' reports to this connection.
      await waitUntil("stats of all 3 workers", () => servers.size === 3, 10_000);
      assert.deepEqual([...servers].map((id) => id.split("#")[0]), ["edge-9", "edge-9", "edge-9"]);
    } finally {
      await host.stop();
    }
  });

  it("refuses an admin connection with a wrong password", async () => {
    const host = await SockfleetHost.start({ workers: 1, args: ["--admin-ui-user", "admin", "--admin-ui-password-hash", HASH] });
    try {
      await assert.rejects(connect(`${host.url}/admin`, { auth: { username: "admin", password: "guess" }, transports: ["websocket"], reconnection: false }), /invalid credentials/);
    } finally {
      await host.stop();
    }
  });

  it("serves the Admin UI's page and files from the host itself at /admin/, linking no third-party host", async () => {
    const host = await SockfleetHost.start({ workers: 1, args: ["--admin-ui-user", "admin", "--admin-ui-password-hash", HASH] });
    try {
      const redirect = await fetch(`${host.url}/admin`, { redirect: "manual" });
      assert.equal(redirect.status, 301);
      assert.equal(redirect.headers.get("location"), "/admin/");
      const page = await host.fetch("/admin/");
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /Socket\.IO Admin UI/);
      assert.doesNotMatch(html, /(src|href)="https?:/, "no file from another host");
      const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
      assert.ok(scripts.length > 0);
      for (const script of scripts) assert.equal((await host.fetch(`/admin/${script}`)).status, 200, script);
      assert.equal((await host.fetch("/admin/../../package.json")).status, 404);
    } finally {
      await host.stop();
    }
  });

  it("has no admin namespace and no /admin/ page unless it is switched on", async () => {
    const host = await SockfleetHost.start({ workers: 1 });
    try {
      await assert.rejects(connect(`${host.url}/admin`, { auth: { username: "admin", password: "s3cret" }, transports: ["websocket"], reconnection: false }), /Invalid namespace/);
      assert.equal((await host.fetch("/admin/")).status, 404);
    } finally {
      await host.stop();
    }
  });

  it("refuses a user without a password hash, and a password that is not a bcrypt hash", async () => {
    const alone = await runCli(["--admin-ui-user", "admin"]);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /adminUiPasswordHash.*needs both a user and a password hash/);
    const plain = await runCli(["--admin-ui-user", "admin", "--admin-ui-password-hash", "s3cret"]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /invalid setting adminUiPasswordHash from --admin-ui-password-hash: must be a bcrypt hash/);
  });
});
