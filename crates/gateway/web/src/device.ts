// The device class sent with every feed and product page request. The gateway chooses density
// and image sizes from it.

import { DeviceClass } from "./gen/tailor/mobile/v1/mobile_pb.js";

/** Viewports at least this wide are tablets (the usual portrait tablet width). */
const TABLET_QUERY = "(min-width: 768px)";

const OVERRIDES = new Map<string, DeviceClass>([
  ["phone", DeviceClass.PHONE],
  ["tablet", DeviceClass.TABLET],
  ["low_end", DeviceClass.LOW_END],
]);

/**
 * `?device=low_end` (or phone, tablet) forces a class, e.g. to see the low-end layout on a
 * desktop; otherwise the viewport decides between phone and tablet.
 */
export function deviceClass(): DeviceClass {
  const forced = OVERRIDES.get(new URLSearchParams(window.location.search).get("device") ?? "");
  if (forced !== undefined) return forced;
  return window.matchMedia(TABLET_QUERY).matches ? DeviceClass.TABLET : DeviceClass.PHONE;
}

/** "phone", "tablet" or "low_end". */
export function deviceName(device: DeviceClass): string {
  return (DeviceClass[device] ?? "PHONE").toLowerCase();
}

/** Calls `onChange` when the viewport crosses the phone/tablet boundary. */
export function watchDeviceClass(onChange: () => void): void {
  window.matchMedia(TABLET_QUERY).addEventListener("change", onChange);
}
