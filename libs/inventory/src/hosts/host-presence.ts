/**
 * Which rows mean "Norm still has something on this host", as SQL lists. One definition for
 * drift, placement and host deletion, so a host Norm may delete is exactly one where nothing
 * would be reported, promised or counted.
 */

/** Instance states that still hold a host and a domain name. */
export const LIVE_INSTANCE = `('provisioning', 'running', 'stopping', 'stopped', 'decommissioning')`;

/** Request states whose capacity is promised but perhaps not yet visible to `xl info`. */
export const IN_FLIGHT_REQUEST = `('approved', 'provisioning')`;
