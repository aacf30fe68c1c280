import type { Namespace, Server, Socket } from "socket.io";
import type { Config } from "../../config/schema";
import type { LimitReporter } from "../../observability/limits";
import { catchAppErrors } from "./app-errors";
import { guardedParser, type EngineConn, type GuardedParser } from "./guarded-parser";
import { capRooms, namespaceCap } from "./rooms";
import { watchSlowConsumer } from "./slow-consumer";

export { RATE_LIMITED_EVENT } from "./guarded-parser";
export { NAMESPACE_LIMIT_MESSAGE, RoomLimitError } from "./rooms";

/**
 * What one client socket may cost a worker (README "Security and limits"): packet shape and
 * event rate in the parser, slow consumers on the engine, app exceptions, rooms and namespaces
 * on each socket. Build it before the Server (its parser is a Server option), install it on the
 * Server before the app attaches its handlers.
 */
export class WorkerGuard {
  private readonly parserWithAttach: GuardedParser;
  /**
   * A dynamic namespace's children copy its middlewares and connection listeners and are announced
   * as new namespaces too, so a socket can come by twice: guard it once.
   */
  private readonly seen = { checked: new WeakSet<Socket>() };

  constructor(
    private readonly config: Config,
    private readonly reporter: LimitReporter,
  ) {
    this.parserWithAttach = guardedParser(
      {
        maxEventArgs: config.maxEventArgs,
        maxEventDepth: config.maxEventDepth,
        maxAttachments: config.maxAttachments,
        maxAttachmentBytes: config.maxHttpBufferSize,
      },
      { perSecond: config.maxEventsPerSecond, burst: config.maxEventsBurst, graceMs: config.rateLimitGrace },
      reporter,
    );
  }

  /** The Socket.IO `parser` option. */
  get parser(): { Encoder: GuardedParser["Encoder"]; Decoder: GuardedParser["Decoder"] } {
    return { Encoder: this.parserWithAttach.Encoder, Decoder: this.parserWithAttach.Decoder };
  }

  install(io: Server): void {
    const engine = io.engine as unknown as Parameters<GuardedParser["attach"]>[0] & { on(event: "connection", fn: (conn: EngineConn) => void): unknown };
    this.parserWithAttach.attach(engine);
    if (this.config.maxBufferedBytes > 0) {
      const max = this.config.maxBufferedBytes;
      engine.on("connection", (conn) => watchSlowConsumer(conn as unknown as Parameters<typeof watchSlowConsumer>[0], max, this.reporter));
    }
    const cap = this.config.maxNamespacesPerClient > 0 ? namespaceCap(this.config.maxNamespacesPerClient, this.reporter) : undefined;
    const guardNamespace = (nsp: Namespace): void => {
      if (cap) {
        nsp.use((socket, next) => {
          if (this.seen.checked.has(socket)) return next();
          this.seen.checked.add(socket);
          cap(socket, next);
        });
      }
    };
    io.on("new_namespace", guardNamespace);
    guardNamespace(io.of("/"));
    if (this.config.maxRoomsPerSocket > 0) capRooms(io, this.config.maxRoomsPerSocket, this.reporter);
    if (this.config.appErrors === "log") {
      catchAppErrors(io, {
        failed: (err, event, s) => {
          this.reporter.hit("app-error", { event, socket: s.id, nsp: s.nsp.name, err }, "app handler threw; the socket stays up");
        },
      });
    }
  }
}
