// Formatting of values from the API for display.

import type { Money } from "./gen/tailor/common/v1/common_pb.js";

const locale = navigator.language || "en";

/** Digits after the decimal point of a currency's minor unit (CNY 2, JPY 0, KWD 3). */
function minorDigits(currency: string): number {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
    .maximumFractionDigits ?? 2;
}

/**
 * "¥129.00" from { amountMinor: 12900n, currency: "CNY" }, in the browser's locale. Money is an
 * integer count of minor units (never a float on the wire); dividing it as a Number is exact
 * for any realistic price (below 2^53 minor units). Empty when there is no price.
 */
export function formatMoney(money: Money | undefined): string {
  if (!money || !money.currency) return "";
  try {
    const digits = minorDigits(money.currency);
    const amount = Number(money.amountMinor) / 10 ** digits;
    return new Intl.NumberFormat(locale, {
      style: "currency",
      currency: money.currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(amount);
  } catch {
    // An unknown currency code: still show the number rather than nothing.
    return `${money.amountMinor} ${money.currency} (minor units)`;
  }
}

/** "14:03:27" in the browser's locale. */
export function formatTime(date: Date): string {
  return date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A CSS-class-safe token: "Bold Autumn!" → "bold-autumn". */
export function cssToken(value: string): string {
  return (
    value
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "default"
  );
}
