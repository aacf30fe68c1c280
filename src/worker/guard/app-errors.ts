import type { Socket } from "socket.io";

export interface AppErrorHooks {
  /** An app listener threw (or its promise rejected) for `event` on `socket`. */
  failed(err: unknown, event: string, socket: Socket): void;
}

type Listener = ((...args: unknown[]) => unknown) & { listener?: unknown };

/**
 * Makes every listener the app attaches to `socket` catch its own exceptions, sync or async, so
 * that a throwing handler costs one log line instead of the worker (Socket.IO calls listeners
 * through EventEmitter, where an exception would otherwise be uncaught). Call at connection,
 * before the app's connection handler runs. `wrapped.listener` keeps socket.off(event, fn)
 * working: Node's EventEmitter matches it like a once-wrapper.
 */
export function catchAppErrors(socket: Socket, hooks: AppErrorHooks): void {
  const wrap = (event: string, fn: Listener): Listener => {
    const wrapped: Listener = function (this: unknown, ...args: unknown[]) {
      try {
        const result = fn.apply(this, args);
        if (result && typeof (result as Promise<unknown>).then === "function") {
          (result as Promise<unknown>).then(undefined, (err: unknown) => hooks.failed(err, event, socket));
        }
        return result;
      } catch (err) {
        hooks.failed(err, event, socket);
        return undefined;
      }
    };
    wrapped.listener = fn;
    return wrapped;
  };
  const target = socket as unknown as Record<string, (event: string, fn: Listener) => unknown>;
  for (const method of ["on", "addListener", "prependListener"] as const) {
    const original = target[method].bind(socket);
    target[method] = (event: string, fn: Listener) => original(event, typeof fn === "function" ? wrap(String(event), fn) : fn);
  }
  // Catch-all listeners are matched by identity in offAny: remember which wrapper stands for which.
  const anyWrappers = new WeakMap<Listener, Listener>();
  const anyTarget = socket as unknown as Record<string, (fn?: Listener) => unknown>;
  for (const method of ["onAny", "prependAny"] as const) {
    const original = anyTarget[method].bind(socket);
    anyTarget[method] = (fn?: Listener) => {
      if (typeof fn !== "function") return original(fn);
      const wrapped = anyWrappers.get(fn) ?? wrap("(any)", fn);
      anyWrappers.set(fn, wrapped);
      return original(wrapped);
    };
  }
  const offAny = anyTarget.offAny.bind(socket);
  anyTarget.offAny = (fn?: Listener) => offAny(fn === undefined ? undefined : (anyWrappers.get(fn) ?? fn));
}
