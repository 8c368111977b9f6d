// Behaviour tracking: every click, product view, add-to-cart and purchase goes to TrackEvents.
//
// Events are queued and sent almost at once (events of the same tick share a request). Each has
// a client-made id, so a retry after a lost response is counted once by the backend; transient
// failures are therefore retried with the same ids.

import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { describeError, isTransient, mobile, CALL_TIMEOUT_MS } from "./api.js";
import type { Money } from "./gen/tailor/common/v1/common_pb.js";
import { EventKind, TrackEventSchema, type TrackEvent } from "./gen/tailor/mobile/v1/mobile_pb.js";
import { identity, randomId } from "./identity.js";

/** The contract's limit per request. */
const MAX_BATCH = 200;
const MAX_ATTEMPTS = 5;
const MAX_LOG = 500;

/** What happened to one event, for the debug hook (`window.__tailorStorefront.events`). */
export interface TrackedEntry {
  eventId: string;
  kind: string;
  itemId: string;
  state: "queued" | "sending" | "accepted" | "rejected" | "failed";
  reason?: string;
}

interface Pending {
  event: TrackEvent;
  entry: TrackedEntry;
  attempts: number;
}

export class Tracker {
  /** Every event of this page, oldest first; tests read it through the debug hook. */
  readonly log: TrackedEntry[] = [];
  private queue: Pending[] = [];
  private scheduled = false;
  private sending = false;

  constructor(private readonly onProblem: (message: string) => void) {}

  track(kind: EventKind, itemId: string, extra: { quantity?: number; unitPrice?: Money } = {}): void {
    const event = create(TrackEventSchema, {
      eventId: randomId(),
      kind,
      occurredAt: timestampNow(),
      itemId,
      sessionId: identity.sessionId(),
      quantity: extra.quantity ?? 0,
      unitPrice: extra.unitPrice,
    });
    const entry: TrackedEntry = {
      eventId: event.eventId,
      kind: EventKind[kind] ?? String(kind),
      itemId,
      state: "queued",
    };
    this.log.push(entry);
    // Only recent history is of interest; a long session must not grow it without bound.
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
    this.queue.push({ event, entry, attempts: 0 });
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    const batch = this.queue.splice(0, MAX_BATCH);
    for (const p of batch) {
      p.entry.state = "sending";
      p.attempts += 1;
    }
    let retryIn = 0;
    try {
      const response = await mobile.trackEvents(
        { events: batch.map((p) => p.event) },
        { timeoutMs: CALL_TIMEOUT_MS },
      );
      const rejected = new Map(response.rejected.map((r) => [r.index, r]));
      batch.forEach((p, index) => {
        const rejection = rejected.get(index);
        if (rejection) {
          p.entry.state = "rejected";
          p.entry.reason = `${rejection.field}: ${rejection.reason}`;
          // The app sent something the backend does not accept: a bug worth seeing in the console.
          console.warn(`TrackEvents refused ${p.entry.kind} ${p.entry.itemId}: ${p.entry.reason}`);
        } else {
          // Accepted, or a duplicate of an earlier attempt whose response was lost.
          p.entry.state = "accepted";
        }
      });
    } catch (error) {
      const info = describeError(error);
      const retry = batch.filter((p) => isTransient(error) && p.attempts < MAX_ATTEMPTS);
      for (const p of batch) {
        if (retry.includes(p)) {
          p.entry.state = "queued";
        } else {
          p.entry.state = "failed";
          p.entry.reason = `${info.code}: ${info.message}`;
        }
      }
      if (retry.length > 0) {
        this.queue.unshift(...retry);
        retryIn = 500 * 2 ** Math.min(retry[0].attempts, 5);
      } else {
        this.onProblem(`Could not record your activity (${info.code}): ${info.message}`);
      }
    } finally {
      this.sending = false;
    }
    if (this.queue.length > 0) this.schedule(retryIn);
  }
}
