import type { Namespace, Server, Socket } from "socket.io";
import type { LimitReporter } from "../observability/limits";

/**
 * Decides whether `socket` may join `room`. Anything but `true` (or a promise of `true`) refuses;
 * a throw or a rejection refuses too.
 */
export type JoinAuthorizer = (socket: Socket, room: string) => boolean | Promise<boolean>;

/** What a refused `socket.join` rejects with. */
export class JoinRefusedError extends Error {
  constructor(readonly rooms: string[]) {
    super(`join refused: ${rooms.join(", ")}`);
    this.name = "JoinRefusedError";
  }
}

type AddAll = (id: string, rooms: Set<string>) => Promise<void> | void;

/** Sockets still in their middlewares are kept in a private map of the namespace (socket.io 4.8). */
function findSocket(nsp: Namespace, id: string): Socket | undefined {
  const pending = (nsp as unknown as { _preConnectSockets?: Map<string, Socket> })._preConnectSockets;
  return nsp.sockets.get(id) ?? pending?.get(id);
}

/**
 * Enforces the app's join authorisers on every room join of this worker. Every `socket.join`
 * ends in the namespace adapter's `addAll`, whoever calls it: the app's handlers and middlewares,
 * `io.in(..).socketsJoin()` from any worker or host (executed here for this worker's sockets), the
 * Admin UI. So the adapter's `addAll` is wrapped, per namespace, as the namespace is created. Left
 * alone: a socket's join of its own id room, and the rooms a recovered session gets back (they
 * were authorised when first joined; the socket is not yet known to its namespace then).
 *
 * If every authoriser answers synchronously, an allowed join happens synchronously, as without
 * authorisers; a refused one returns a rejected promise ({@link JoinRefusedError}) from
 * `socket.join`. Joins of several rooms are all or nothing.
 */
export class JoinGuard {
  private readonly authorizers: JoinAuthorizer[] = [];

  constructor(private readonly limits: LimitReporter) {}

  add(authorizer: JoinAuthorizer): void {
    if (typeof authorizer !== "function") throw new TypeError("authorizeJoin expects a function (socket, room) => boolean | Promise<boolean>");
    this.authorizers.push(authorizer);
  }

  install(io: Server): void {
    const guard = (nsp: Namespace): void => {
      const adapter = nsp.adapter as unknown as { addAll: AddAll };
      const addAll: AddAll = adapter.addAll.bind(adapter);
      adapter.addAll = (id, rooms) => this.join(nsp, id, rooms, addAll);
    };
    io.on("new_namespace", guard);
    guard(io.of("/"));
  }

  private join(nsp: Namespace, id: string, rooms: Set<string>, addAll: AddAll): Promise<void> | void {
    if (this.authorizers.length === 0) return addAll(id, rooms);
    const asked = [...rooms].filter((room) => room !== id);
    const socket = asked.length > 0 ? findSocket(nsp, id) : undefined;
    if (!socket) return addAll(id, rooms);

    const answers = asked.map((room) => this.authorizers.map((authorize) => this.ask(authorize, socket, room)));
    if (answers.every((row) => row.every((answer) => typeof answer === "boolean"))) {
      return this.settle(nsp, socket, asked, answers as boolean[][], () => addAll(id, rooms));
    }
    return Promise.all(answers.map((row) => Promise.all(row))).then((settled) =>
      this.settle(nsp, socket, asked, settled, () => {
        // The socket may have gone while the authorisers thought: joining now would leave a
        // membership behind that nobody removes.
        if (findSocket(nsp, id) === socket) return addAll(id, rooms);
      }),
    );
  }

  /** One authoriser's answer: a boolean now, or a promise of one that never rejects. */
  private ask(authorize: JoinAuthorizer, socket: Socket, room: string): boolean | Promise<boolean> {
    const failed = (err: unknown): false => {
      // App code failed; the join is refused (and counted as such in settle()).
      this.limits.hit("app-error", { err, nsp: socket.nsp.name, socket: socket.id, room }, "join authorizer threw; join refused");
      return false;
    };
    try {
      const answer = authorize(socket, room);
      if (typeof (answer as { then?: unknown } | null)?.then === "function") return Promise.resolve(answer).then((value) => value === true, failed);
      return answer === true;
    } catch (err) {
      return failed(err);
    }
  }

  private settle(nsp: Namespace, socket: Socket, asked: string[], answers: boolean[][], join: () => Promise<void> | void): Promise<void> | void {
    const refused = asked.filter((_, i) => !answers[i].every(Boolean));
    if (refused.length === 0) return join();
    this.limits.hit("join-refused", { nsp: nsp.name, socket: socket.id, rooms: refused }, "room join refused");
    const rejection = Promise.reject(new JoinRefusedError(refused));
    // Joins made on the socket's behalf (socketsJoin) or with `void socket.join(..)` ignore the
    // result: the refusal is already counted and logged, it must not become an unhandled
    // rejection. A caller that awaits the promise still gets the error.
    rejection.catch(() => undefined);
    return rejection;
  }
}
