import net from "node:net";
import { Gauge, type Registry } from "prom-client";
import type { Config } from "../../config/schema";
import type { LimitReporter } from "../../observability/limits";
import { Admission, type Ticket } from "./admission";
import type { IntakeCapacity } from "./capacity";
import { normaliseAddress, TrustedProxies } from "./client-address";
import { HeadBuffer, PendingHeads } from "./pending-heads";
import { refuse } from "./respond";

/** Where a connection goes once its first request head is read and it is admitted. */
export type Router = (socket: net.Socket, head: Buffer, ticket: Ticket) => void;

/**
 * The primary's public listener: admits TCP connections (--max-connections,
 * --max-connections-per-ip), reads each one's first request head within bounds (--head-timeout,
 * --max-head-bytes, --max-pending-heads), finds the client address (--trusted-proxies) and hands
 * the connection to the router. Refusals before a head are a bare close (the client has said
 * nothing to answer); after a head, an HTTP answer with `Connection: close`.
 */
export class Intake {
  readonly server: net.Server;
  readonly admission: Admission;
  private readonly pending: PendingHeads;
  private readonly proxies: TrustedProxies;
  private listening = false;

  constructor(
    private readonly config: Config,
    capacity: IntakeCapacity,
    private readonly limits: LimitReporter,
    registry: Registry,
    private readonly route: Router,
  ) {
    this.admission = new Admission({ maxConnections: capacity.maxConnections, maxConnectionsPerIp: config.maxConnectionsPerIp });
    this.proxies = new TrustedProxies(config.trustedProxies);
    this.pending = new PendingHeads(capacity.maxPendingHeads, config.headTimeout, (socket, reason) => {
      this.limits.hit(reason, { address: socket.remoteAddress, ...(reason === "head-timeout" ? { headTimeout: config.headTimeout } : { maxPendingHeads: capacity.maxPendingHeads }) });
      socket.destroy();
    });
    this.server = net.createServer((socket) => this.accept(socket));
    const intake = this;
    new Gauge({
      name: "sockfleet_connections",
      help: "TCP connections the host holds now: handed to a worker, or waiting in the primary for a request head or a hand-over.",
      registers: [registry],
      collect() {
        this.set(intake.admission.connections);
      },
    });
    new Gauge({
      name: "sockfleet_pending_heads",
      help: "Connections waiting in the primary for their first request head.",
      registers: [registry],
      collect() {
        this.set(intake.pending.size);
      },
    });
  }

  /**
   * Listens; rejects if that fails. Once listening, a failing accept() (EMFILE: out of descriptors)
   * refuses that one connection, counted as a max-connections hit, instead of stopping the host.
   */
  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.on("error", (err: NodeJS.ErrnoException) => {
        if (!this.listening) return reject(err);
        this.limits.hit("max-connections", { err: err.code, syscall: err.syscall }, "cannot accept a connection");
      });
      this.server.listen(port, host, () => {
        this.listening = true;
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (socket.remoteAddress === undefined) {
      socket.destroy(); // closed before we got to it
      return;
    }
    const peer = normaliseAddress(socket.remoteAddress);
    const viaProxy = this.proxies.trusts(peer);
    const ticket = this.admission.admit(viaProxy ? undefined : peer);
    if (typeof ticket === "string") {
      this.limits.hit(ticket, { address: peer, connections: this.admission.connections }, "connection refused");
      socket.destroy();
      return;
    }
    socket.once("close", () => {
      this.pending.remove(socket);
      if (!ticket.transferred) this.admission.release(ticket);
    });
    socket.on("error", () => socket.destroy());
    const head = new HeadBuffer();
    const onData = (chunk: Buffer): void => {
      const complete = head.push(chunk);
      if (!complete && head.size < this.config.maxHeadBytes) return;
      socket.off("data", onData);
      this.pending.remove(socket);
      if (!complete || head.headLength! > this.config.maxHeadBytes) {
        this.limits.hit("max-head-bytes", { address: peer, bytes: head.headLength ?? head.size }, "request head too large");
        refuse(socket, 431);
        return;
      }
      const bytes = head.bytes();
      if (viaProxy) {
        const client = this.proxies.clientAddress(peer, bytes);
        if (!this.admission.assign(ticket, client)) {
          this.limits.hit("max-connections-per-ip", { address: client, proxy: peer }, "connection refused");
          refuse(socket, 503);
          return;
        }
      }
      this.route(socket, bytes, ticket);
    };
    socket.on("data", onData);
    this.pending.add(socket);
  }

  close(): void {
    this.server.close();
  }
}
