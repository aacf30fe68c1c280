/**
 * Limits on the shape of one packet a client sends, checked on the encoded text before
 * JSON.parse: a packet with 100,000 arguments or thousands of nesting levels would otherwise
 * overflow the stack in socket.io's dispatch (or in anything recursive the app runs on it).
 */
export interface PacketLimits {
  /** Most arguments of one event (the event name not counted) or acknowledgement. */
  maxEventArgs: number;
  /** Deepest nesting of arrays and objects inside the arguments (`[1]` as an argument is depth 1). */
  maxEventDepth: number;
  /** Most binary attachments of one packet; 0 = no limit of ours. */
  maxAttachments: number;
  /** Most bytes of all attachments of one packet together. */
  maxAttachmentBytes: number;
}

/** Socket.IO packet types (socket.io-parser's PacketType). */
export const EVENT = 2;
export const ACK = 3;
export const BINARY_EVENT = 5;
export const BINARY_ACK = 6;

/** What the text header of a packet says, read without parsing its JSON. */
export interface PacketHeader {
  type: number;
  attachments: number;
  nsp: string;
  /** Index of the JSON data (after the ack id), or the length when there is none. */
  dataStart: number;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Reads `<type>[<attachments>-][<nsp>,][<id>]` as socket.io-parser does, but only to find the
 * type, namespace and where the JSON starts. Malformed headers are left to socket.io-parser.
 */
export function readHeader(str: string): PacketHeader {
  const type = str.charCodeAt(0) - 48;
  let i = 1;
  let attachments = 0;
  if (type === BINARY_EVENT || type === BINARY_ACK) {
    const dash = str.indexOf("-", 1);
    if (dash > 1) {
      attachments = Number(str.slice(1, dash));
      i = dash + 1;
    }
  }
  let nsp = "/";
  if (str.charCodeAt(i) === 47 /* / */) {
    const comma = str.indexOf(",", i);
    const end = comma === -1 ? str.length : comma;
    nsp = str.slice(i, end);
    i = comma === -1 ? end : end + 1;
  }
  while (i < str.length && isDigit(str.charCodeAt(i))) i++;
  return { type, attachments: Number.isFinite(attachments) ? attachments : 0, nsp, dataStart: i };
}

/** Depth and top-level element count of the JSON in `str` from `start`, stopping early past the bounds. */
export interface JsonShape {
  depth: number;
  elements: number;
}

/**
 * Scans JSON text iteratively (no recursion, no allocation): nesting depth of arrays/objects and
 * the number of elements of the outermost array. Stops as soon as `depthBound` or `elementBound`
 * is passed, so a hostile packet costs at most one pass over its text.
 */
export function scanJson(str: string, start: number, depthBound: number, elementBound: number): JsonShape {
  let depth = 0;
  let maxDepth = 0;
  let commas = 0;
  let sawValue = false;
  let inString = false;
  for (let i = start; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      if (depth === 1) sawValue = true;
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (depth === 1) sawValue = true;
      if (++depth > maxDepth) {
        maxDepth = depth;
        if (maxDepth > depthBound) break;
      }
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    } else if (depth === 1) {
      if (c === 44 /* , */) {
        if (++commas >= elementBound) break;
      } else if (c > 32) sawValue = true;
    }
  }
  return { depth: maxDepth, elements: sawValue ? commas + 1 : 0 };
}

/** Why a packet breaks a limit, as the limit's name and a message; undefined when it is fine. */
export type Violation = { limit: "max-event-args" | "max-event-depth" | "max-attachments"; message: string; details: Record<string, number> };

/** Checks a packet's text against the limits; binary attachments are checked as they arrive. */
export function checkPacket(str: string, header: PacketHeader, limits: PacketLimits): Violation | undefined {
  if (limits.maxAttachments > 0 && header.attachments > limits.maxAttachments) {
    return { limit: "max-attachments", message: "too many binary attachments", details: { attachments: header.attachments, max: limits.maxAttachments } };
  }
  if (header.dataStart >= str.length) return undefined;
  const isEvent = header.type === EVENT || header.type === BINARY_EVENT;
  const isAck = header.type === ACK || header.type === BINARY_ACK;
  // The data of an event or ack is the argument array itself (depth 1); a connect's auth is an object (depth 1).
  const maxElements = limits.maxEventArgs + (isEvent ? 1 : 0);
  const shape = scanJson(str, header.dataStart, limits.maxEventDepth + 1, maxElements + 1);
  if (shape.depth > limits.maxEventDepth + 1) {
    return { limit: "max-event-depth", message: "event nested too deeply", details: { depthAtLeast: shape.depth - 1, max: limits.maxEventDepth } };
  }
  if ((isEvent || isAck) && shape.elements > maxElements) {
    return { limit: "max-event-args", message: "too many event arguments", details: { argsAtLeast: shape.elements - (isEvent ? 1 : 0), max: limits.maxEventArgs } };
  }
  return undefined;
}
