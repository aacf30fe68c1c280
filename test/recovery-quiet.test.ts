import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { numbered, publishNumbered, range } from "./helpers/numbered";
import { compiledFixture, runCli, SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

type Transport = "polling" | "websocket";

/**
 * Clients that received no broadcast before their connection dropped (socket.io-client then has a
 * session id but no offset), and which clients get offsets at all (README "Which clients get offsets").
 */
describe("recovery of clients that received no broadcast, and who gets offsets", function () {
  this.timeout(60_000);
  let host: SockfleetHost | undefined;
  let clients: Client[] = [];

  afterEach(async () => {
    closeClients(clients);
    clients = [];
    await host?.stop();
    host = undefined;
  });

  async function client(options: Parameters<typeof connect>[1] = {}): Promise<Client> {
    const socket = await connect(host!.url, { reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0, ...options });
    clients.push(socket);
    return socket;
  }

  /** A client on another worker than `pid`. */
  async function elsewhere(pid: number): Promise<Client> {
    for (let i = 0; i < 20; i++) {
      const candidate = await client({ transports: ["websocket"] });
      if ((await whoami(candidate)).pid !== pid) return candidate;
    }
    throw new Error("no client landed on another worker");
  }

  /** Every argument list of "event" a client receives. */
  function argsOf(socket: Client): unknown[][] {
    const seen: unknown[][] = [];
    socket.on("event", (...args: unknown[]) => seen.push(args));
    return seen;
  }

  for (const transport of ["polling", "websocket"] as Transport[]) {
    it(`recovers a ${transport} client that got no broadcast before its worker was SIGKILLed, with everything sent meanwhile, once`, async () => {
      host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
      const quiet = await client({ transports: transport === "polling" ? ["polling"] : ["websocket"] });
      const victim = (await whoami(quiet)).pid;
      await request(quiet, "join", "blue");
      const publisher = await elsewhere(victim);
      const id = quiet.id!;
      const streams = numbered(quiet);

      const disconnected = nextEvent(quiet, "disconnect", 5_000);
      const reconnected = nextEvent(quiet, "connect", 15_000);
      process.kill(victim, "SIGKILL");
      await disconnected;
      await publishNumbered(publisher, id, 1, 5);
      await reconnected;
      assert.equal(quiet.recovered, true, "recovered, not a new session");
      assert.equal(quiet.id, id);
      await publishNumbered(publisher, id, 6, 8);
      await waitUntil("all 8 on every stream", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 8));
      for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 8), stream);
    });
  }

  it("recovers a client twice in a row when the first recovery brought it nothing", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
    const quiet = await client({ transports: ["websocket"] });
    const id = quiet.id!;
    const streams = numbered(quiet);
    for (let round = 0; round < 2; round++) {
      const victim = (await whoami(quiet)).pid;
      const reconnected = nextEvent(quiet, "connect", 20_000);
      process.kill(victim, "SIGKILL");
      await reconnected;
      assert.equal(quiet.recovered, true, `round ${round}`);
      assert.equal(quiet.id, id);
    }
    const publisher = await client({ transports: ["websocket"] });
    await publishNumbered(publisher, id, 1, 2);
    await waitUntil("both", () => streams.get("direct")?.length === 2);
    assert.deepEqual(streams.get("all"), [1, 2]);
  });

  it("gives socket.io-client (polling and websocket) the offset as the last argument, and none to a client that opts out", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
    const polling = await client({ transports: ["polling"] });
    const websocket = await client({ transports: ["websocket"] });
    const optedOut = await client({ transports: ["websocket"], auth: { offsets: false } });
    const seen = [polling, websocket, optedOut].map(argsOf);
    await request(polling, "broadcast", { n: 1 });
    await waitUntil("all three to get it", () => seen.every((args) => args.length === 1));
    for (const args of seen.slice(0, 2)) {
      assert.equal(args[0].length, 2);
      assert.deepEqual(args[0][0], { n: 1 });
      assert.equal(typeof args[0][1], "string");
    }
    assert.deepEqual(seen[2], [[{ n: 1 }]]);
  });

  it("with --recovery-offsets opt-in gives offsets only to a client whose CONNECT auth has offsets: true", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app"), args: ["--recovery-offsets", "opt-in"] });
    const plain = await client({ transports: ["websocket"] });
    const optedIn = await client({ transports: ["websocket"], auth: { offsets: true } });
    const [plainArgs, optedInArgs] = [plain, optedIn].map(argsOf);
    await request(plain, "broadcast", "x");
    await waitUntil("both to get it", () => plainArgs.length === 1 && optedInArgs.length === 1);
    assert.deepEqual(plainArgs, [["x"]]);
    assert.equal(optedInArgs[0].length, 2);
  });

  it("refuses a --recovery-offsets other than auto, opt-in or all, naming the setting", async () => {
    const { code, stderr } = await runCli(["--recovery-offsets", "sometimes"]);
    assert.equal(code, 2);
    assert.match(stderr, /^sockfleet: invalid setting recoveryOffsets from --recovery-offsets: .*/);
  });

  it("gives a client that gets no offsets a new session after its worker dies, never a replay of what it already has", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
    const optedOut = await client({ transports: ["websocket"], auth: { offsets: false } });
    const victim = (await whoami(optedOut)).pid;
    const publisher = await elsewhere(victim);
    const id = optedOut.id!;
    const streams = numbered(optedOut);
    await publishNumbered(publisher, id, 1, 2);
    await waitUntil("the first two", () => streams.get("all")?.length === 2);
    const reconnected = nextEvent(optedOut, "connect", 15_000);
    process.kill(victim, "SIGKILL");
    await reconnected;
    assert.equal(optedOut.recovered, false);
    await publishNumbered(publisher, optedOut.id!, 3, 3);
    await waitUntil("the third", () => streams.get("all")?.length === 3);
    assert.deepEqual(streams.get("all"), [1, 2, 3]);
  });
});
