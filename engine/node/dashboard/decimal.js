// Decimal strings, kept exact. The protocol sends prices, quantities and money as decimal
// strings; the page shows them as sent and does arithmetic (spread, totals, ticket checks)
// on BigInt units, never on floating point. Only charts and bar widths use JS numbers.

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** The number of digits after the point ("61800.20" -> 2). */
export function fracDigits(s) {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** `s` as an integer count of 10^-scale units, or null if it is not a decimal or has more
 *  fraction digits than `scale`. */
export function toUnits(s, scale) {
  if (typeof s !== 'string' || !DECIMAL.test(s) || fracDigits(s) > scale) return null;
  const neg = s.startsWith('-');
  const body = neg ? s.slice(1) : s;
  const [int, frac = ''] = body.split('.');
  const u = BigInt(int + frac.padEnd(scale, '0'));
  return neg ? -u : u;
}

/** The decimal string of `units` at `scale` ("6180020", 2 -> "61800.20"). */
export function fromUnits(units, scale) {
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return neg ? `-${digits}` : digits;
}

/** Compares two decimal strings of any scales: -1, 0 or 1. */
export function cmp(a, b) {
  // The common case, levels of one instrument: same scale, not negative, no redundant leading
  // zero ("0.5" and "10.5", not "00.5"), so the longer string is the larger and equal lengths
  // compare as text. No allocation: the book sorts and range-checks with this on every update.
  if (fracDigits(a) === fracDigits(b) && plain(a) && plain(b)) {
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const scale = Math.max(fracDigits(a), fracDigits(b));
  const x = toUnits(a, scale);
  const y = toUnits(b, scale);
  if (x === null || y === null) throw new TypeError(`not decimals: ${a}, ${b}`);
  return x < y ? -1 : x > y ? 1 : 0;
}

function plain(s) {
  return s[0] !== '-' && !(s.length > 1 && s[0] === '0' && s[1] !== '.');
}

/** a - b, at the larger of their scales. */
export function sub(a, b) {
  const scale = Math.max(fracDigits(a), fracDigits(b));
  return fromUnits(toUnits(a, scale) - toUnits(b, scale), scale);
}

/** a + b, at the larger of their scales. */
export function add(a, b) {
  const scale = Math.max(fracDigits(a), fracDigits(b));
  return fromUnits(toUnits(a, scale) + toUnits(b, scale), scale);
}

/** True for "0", "0.000", "-0.0". */
export function isZero(s) {
  return /^-?0*(\.0*)?$/.test(s);
}

/** True for a negative decimal (not "-0.00"). */
export function isNegative(s) {
  return s.startsWith('-') && !isZero(s);
}

/** Why `s` is not a positive decimal with at most `scale` fraction digits, or null if it is. */
export function checkPositive(s, scale, what) {
  if (s === '') return `${what} is required`;
  if (!/^\d+(\.\d+)?$/.test(s)) return `${what} must be a decimal number like 0.010`;
  if (fracDigits(s) > scale) return `${what} has more than ${scale} decimal places`;
  if (isZero(s)) return `${what} must be more than 0`;
  return null;
}
