// Who the storefront speaks for: an anonymous device, or a signed-in user.
//
// The gateway identifies an anonymous visitor by the `x-device-id` header and a signed-in user by
// `authorization: Bearer <JWT>` (see mobile.proto). The device id and the token live in
// localStorage so a reload keeps the same personalization; the session id lives in
// sessionStorage so each tab session is one session in the analytics.

const DEVICE_KEY = "tailor.deviceId";
const TOKEN_KEY = "tailor.token";
const USER_KEY = "tailor.userId";
const SESSION_KEY = "tailor.sessionId";

/** A random UUID v4. */
export function randomId(): string {
  // crypto.randomUUID exists only in secure contexts (https or localhost); a phone opening the
  // gateway by its LAN address over plain http is not one, so build the same thing by hand.
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Web storage that degrades to memory when the browser refuses it (private modes, policies). */
class SafeStorage {
  private readonly memory = new Map<string, string>();
  constructor(private readonly pick: () => Storage) {}

  get(key: string): string | null {
    try {
      return this.pick().getItem(key);
    } catch {
      return this.memory.get(key) ?? null;
    }
  }

  set(key: string, value: string): void {
    try {
      this.pick().setItem(key, value);
    } catch {
      this.memory.set(key, value);
    }
  }

  remove(key: string): void {
    try {
      this.pick().removeItem(key);
    } catch {
      this.memory.delete(key);
    }
  }
}

const local = new SafeStorage(() => window.localStorage);
const session = new SafeStorage(() => window.sessionStorage);

function getOrCreate(store: SafeStorage, key: string): string {
  let value = store.get(key);
  if (!value) {
    value = randomId();
    store.set(key, value);
  }
  return value;
}

/** Seconds since the epoch at which a JWT expires, if it says so. Never verifies anything. */
function jwtExpiry(token: string): number | undefined {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

type Listener = () => void;

/** The current identity and its changes. */
class Identity {
  private readonly listeners: Listener[] = [];

  deviceId(): string {
    return getOrCreate(local, DEVICE_KEY);
  }

  sessionId(): string {
    return getOrCreate(session, SESSION_KEY);
  }

  /** The signed-in user's JWT, or undefined for an anonymous visitor (or an expired token). */
  token(): string | undefined {
    const token = local.get(TOKEN_KEY);
    if (!token) return undefined;
    const exp = jwtExpiry(token);
    if (exp !== undefined && exp * 1000 <= Date.now()) {
      this.clear();
      return undefined;
    }
    return token;
  }

  /** The signed-in user's id as typed at sign-in, or undefined. */
  userId(): string | undefined {
    return this.token() ? (local.get(USER_KEY) ?? undefined) : undefined;
  }

  /** A stable label of the current identity, e.g. "user:alice" or "device:<uuid>". */
  key(): string {
    const user = this.userId();
    return user ? `user:${user}` : `device:${this.deviceId()}`;
  }

  /**
   * Signs in with a development token from the gateway (`GET /dev/token?user=<id>`), which only
   * a gateway in the development environment serves.
   */
  async signIn(userId: string): Promise<void> {
    const response = await fetch(`/dev/token?user=${encodeURIComponent(userId)}`, {
      headers: { accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) {
      const hint =
        response.status === 404
          ? "this server does not issue development tokens (production?)"
          : (await response.text()).slice(0, 200) || response.statusText;
      throw new Error(`Sign-in failed (HTTP ${response.status}): ${hint}`);
    }
    const body = (await response.json()) as { token?: unknown };
    if (typeof body.token !== "string" || body.token === "") {
      throw new Error("Sign-in failed: the server answered without a token");
    }
    local.set(TOKEN_KEY, body.token);
    local.set(USER_KEY, userId);
    this.notify();
  }

  signOut(): void {
    this.clear();
    this.notify();
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  private clear(): void {
    local.remove(TOKEN_KEY);
    local.remove(USER_KEY);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

export const identity = new Identity();
