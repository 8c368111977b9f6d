// The gRPC-web client of tailor.mobile.v1.MobileService.
//
// The gateway serves this page and gRPC-web on the same origin, so the transport talks to
// window.location.origin and needs no CORS.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { MobileService } from "./gen/tailor/mobile/v1/mobile_pb.js";
import { identity } from "./identity.js";

/** Deadline of unary calls; streams have none (they live as long as the page). */
export const CALL_TIMEOUT_MS = 10_000;

/** Adds who we are to every call: the user's token, or else the device id. */
const identify: Interceptor = (next) => (request) => {
  const token = identity.token();
  if (token) {
    request.header.set("authorization", `Bearer ${token}`);
  } else {
    request.header.set("x-device-id", identity.deviceId());
  }
  return next(request);
};

export const mobile = createClient(
  MobileService,
  createGrpcWebTransport({
    baseUrl: window.location.origin,
    interceptors: [identify],
  }),
);

/** A gRPC error for people: the canonical code name (e.g. "UNAVAILABLE") and the message. */
export interface ErrorInfo {
  code: string;
  message: string;
  grpcCode: Code;
}

export function describeError(error: unknown): ErrorInfo {
  const e = ConnectError.from(error);
  // Code names are CamelCase in connect ("DeadlineExceeded"); gRPC spells them DEADLINE_EXCEEDED,
  // which is what the gateway's logs and docs use.
  const code = (Code[e.code] ?? "Unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  return { code, message: e.rawMessage || "no details", grpcCode: e.code };
}

/** Whether a failed call is worth repeating as is. */
export function isTransient(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return (
    code === Code.Unavailable ||
    code === Code.DeadlineExceeded ||
    code === Code.ResourceExhausted ||
    code === Code.Aborted ||
    // fetch() failures (network down, gateway restarting) surface as Unknown or Internal.
    code === Code.Unknown ||
    code === Code.Internal
  );
}

export function isUnauthenticated(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Unauthenticated;
}

export function isCanceled(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}
