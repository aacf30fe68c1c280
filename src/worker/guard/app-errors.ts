import { Socket, type Server } from "socket.io";

export interface AppErrorHooks {
  /** An app listener threw (or its promise rejected) for `event` on `socket`. */
  failed(err: unknown, event: string, socket: Socket): void;
}

type Listener = (this: unknown, ...args: unknown[]) => unknown;
type Emit = (this: Socket, event: string, ...args: unknown[]) => boolean;

/** The Servers whose sockets' listeners are guarded, and how each reports. */
const guarded = new WeakMap<object, AppErrorHooks>();

function hooksOf(emitter: unknown): AppErrorHooks | undefined {
  return emitter instanceof Socket ? guarded.get(emitter.nsp.server) : undefined;
}

/** Calls one listener so that its exception, sync or async, goes to `hooks` instead of up the stack. */
function callGuarded(fn: Listener, socket: Socket, event: string, args: unknown[], hooks: AppErrorHooks): unknown {
  try {
    const result = fn.apply(socket, args);
    if (result && typeof (result as Promise<unknown>).then === "function") {
      (result as Promise<unknown>).then(undefined, (err: unknown) => hooks.failed(err, event, socket));
    }
    return result;
  } catch (err) {
    hooks.failed(err, event, socket);
    return undefined;
  }
}

/**
 * Socket.IO calls a socket's listeners through these two EventEmitter emits: events from the client
 * (`emitUntyped`) and its own `disconnecting`, `disconnect` and `error` (`emitReserved`). On a
 * guarded socket they call each listener on its own, as EventEmitter would (in order, on a copy of
 * the list, once-listeners removed as they run), with its exception caught.
 */
function guardEmit(original: Emit): Emit {
  return function (this: Socket, event: string, ...args: unknown[]): boolean {
    const hooks = hooksOf(this);
    // No listener: EventEmitter's own behaviour (an unheard "error" throws).
    if (!hooks || this.listenerCount(event) === 0) return original.call(this, event, ...args);
    for (const fn of this.rawListeners(event) as Listener[]) callGuarded(fn, this, String(event), args, hooks);
    return true;
  };
}

/** Catch-all listeners (`onAny`) are called by Socket.IO directly: each gets one wrapper, shared by every socket. */
const anyWrappers = new WeakMap<Listener, Listener>();

function anyWrapper(fn: Listener): Listener {
  let wrapped = anyWrappers.get(fn);
  if (!wrapped) {
    wrapped = function (this: unknown, ...args: unknown[]) {
      const socket = this as Socket;
      const hooks = hooksOf(socket);
      return hooks ? callGuarded(fn, socket, "(any)", args, hooks) : fn.apply(socket, args);
    };
    anyWrappers.set(fn, wrapped);
  }
  return wrapped;
}

let patched = false;

/** Patches Socket.IO's Socket class once per process; inert for sockets of servers not guarded. */
function patchSocketClass(): void {
  if (patched) return;
  patched = true;
  const proto = Socket.prototype as unknown as Record<string, unknown>;
  // Socket.IO's Socket calls `super.emitUntyped`, which reads its parent class's prototype (the
  // typed EventEmitter all of Socket.IO's classes share): the patch goes there, and acts on sockets only.
  const parent = Object.getPrototypeOf(proto) as Record<string, unknown>;
  for (const name of ["emitUntyped", "emitReserved"] as const) parent[name] = guardEmit(parent[name] as Emit);
  for (const name of ["onAny", "prependAny"] as const) {
    const original = proto[name] as (this: Socket, fn?: Listener) => unknown;
    proto[name] = function (this: Socket, fn?: Listener) {
      return original.call(this, typeof fn === "function" && hooksOf(this) ? anyWrapper(fn) : fn);
    };
  }
  const offAny = proto.offAny as (this: Socket, fn?: Listener) => unknown;
  // Catch-all listeners are matched by identity: the wrapper stands for the app's function.
  proto.offAny = function (this: Socket, fn?: Listener) {
    return offAny.call(this, fn === undefined ? undefined : (anyWrappers.get(fn) ?? fn));
  };
}

/**
 * Makes every listener the app attaches to a socket of `io` catch its own exceptions, sync or
 * async, so that a throwing handler costs one log line instead of the worker (Socket.IO calls
 * listeners through EventEmitter, where an exception would otherwise be uncaught).
 *
 * The guard sits in Socket.IO's classes (the two emit methods sockets call their listeners through,
 * and `onAny`, patched once per process), not on each socket: wrapping each listener of each socket cost about 2 KB of closures
 * and bound methods per connection. The app's listeners are stored as they are, so
 * `socket.listeners()` and `socket.off(event, fn)` see the app's own functions.
 */
export function catchAppErrors(io: Server, hooks: AppErrorHooks): void {
  patchSocketClass();
  guarded.set(io, hooks);
}
