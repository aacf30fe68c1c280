/** Limits of the reference chat protocol (documented in the README). */
export const MAX_ROOM_LENGTH = 64;
export const MAX_TEXT_LENGTH = 2000;
export const MAX_NAME_LENGTH = 32;

/** The acknowledgement sent for a rejected request. */
export interface ErrorAck {
  error: string;
}

/** A member of a room as "members" and "presence" describe it. */
export interface Member {
  id: string;
  name: string | null;
}

/** What the chat app keeps in `socket.data` (besides the JWT's `user`), read across the fleet by "members". */
export interface ChatData {
  name?: string;
  host?: string;
  worker?: number;
  user?: { name?: unknown };
}

export function roomError(room: unknown): string | undefined {
  if (typeof room !== "string" || room.length === 0 || room.length > MAX_ROOM_LENGTH) {
    return `room must be a string of 1 to ${MAX_ROOM_LENGTH} characters`;
  }
  return undefined;
}

const textError = (text: unknown): string | undefined =>
  typeof text !== "string" || text.length > MAX_TEXT_LENGTH ? `text must be a string of at most ${MAX_TEXT_LENGTH} characters` : undefined;

export function roomMessageError(message: unknown): string | undefined {
  if (typeof message !== "object" || message === null) return "room message must be an object { room, text }";
  const { room, text } = message as { room?: unknown; text?: unknown };
  return roomError(room) ?? textError(text);
}

/** A "chat message" may be any JSON payload; one that is an object with `text` keeps to its limit. */
export function chatMessageError(payload: unknown): string | undefined {
  if (typeof payload !== "object" || payload === null || !("text" in payload)) return undefined;
  return textError((payload as { text: unknown }).text);
}

export function nameError(name: unknown): string | undefined {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    return `name must be a string of 1 to ${MAX_NAME_LENGTH} characters`;
  }
  return undefined;
}
