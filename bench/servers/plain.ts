/** Variant 1: one plain Socket.IO process with the in-memory adapter. */
import http from "node:http";
import { Server } from "socket.io";
import { installMemoryProbe } from "../../src/observability/memory-probe.js";
import { attachChat, exitWithParent, hostName, parseServerArgs, printReady } from "./chat.js";

const args = parseServerArgs(process.argv.slice(2));
const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });
attachChat(io, { host: hostName(), worker: 0 });
httpServer.listen(args.port, args.host, () => {
  const addr = httpServer.address();
  if (addr === null || typeof addr === "string") throw new Error("no TCP address");
  printReady(addr.port, 1);
});
exitWithParent();
process.on("SIGTERM", () => process.exit(0));
installMemoryProbe();
