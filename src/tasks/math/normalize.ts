// Answer normalisation and comparison by value. Numbers are exact rationals (BigInt), so "41.0",
// "041", "82/2" and "\frac{82}{2}" all equal 41 with no floating-point doubt.

/** An exact rational with a positive denominator, in lowest terms. */
export interface Rational {
  num: bigint;
  den: bigint;
}

/**
 * A canonical string form of an answer: whitespace, `$`, `\!`, `\,`, `\;`, `\left`/`\right`, a leading
 * '+' and trailing periods are removed, U+2212 becomes '-'; `\dfrac`/`\tfrac` become `\frac`; one pair of wrapping braces
 * is dropped.
 */
export function normalizeAnswer(raw: string): string {
  let s = raw.replace(/\\[!,;:]|\\left|\\right|\$|\s+/g, '').replace(/\u2212/g, '-');
  s = s.replace(/\\[dt]frac/g, '\\frac');
  s = s.replace(/\.+$/, '');
  if (s.startsWith('{') && s.endsWith('}') && balanced(s.slice(1, -1))) s = s.slice(1, -1);
  if (s.startsWith('+')) s = s.slice(1);
  return s;
}

const INT = /^\d+$/;
const THOUSANDS = /^\d{1,3}(,\d{3})+$/;
const DECIMAL = /^(\d*)\.(\d+)$/;
const FRAC = /^\\frac\{([^{}]+)\}\{([^{}]+)\}$/;

/** The value of a normalised answer (integer, thousands commas, decimal, a/b, \frac{a}{b}), or null. */
export function parseRational(normalized: string): Rational | null {
  let s = normalized;
  let negative = false;
  if (s.startsWith('-')) {
    negative = true;
    s = s.slice(1);
  }
  let value: Rational | null;
  const frac = FRAC.exec(s);
  if (frac) {
    value = divide(parseSigned(frac[1] as string), parseSigned(frac[2] as string));
  } else if (s.includes('/')) {
    const parts = s.split('/');
    value = parts.length === 2 ? divide(parseSigned(parts[0] as string), parseSigned(parts[1] as string)) : null;
  } else {
    value = parseUnsigned(s);
  }
  if (!value) return null;
  return negative ? { num: -value.num, den: value.den } : value;
}

/** Whether two answers are equal: by exact value when the reference is a number, else as strings. */
export function answersEqual(reference: string, candidate: string): boolean {
  const r = normalizeAnswer(reference);
  const c = normalizeAnswer(candidate);
  const rv = parseRational(r);
  if (!rv) return r === c && r.length > 0;
  const cv = parseRational(c);
  return cv !== null && cv.num === rv.num && cv.den === rv.den;
}

/** The canonical text of a rational: "41", "-3/2". */
export function formatRational(v: Rational): string {
  return v.den === 1n ? v.num.toString() : `${v.num}/${v.den}`;
}

function parseSigned(s: string): Rational | null {
  if (s.startsWith('-')) {
    const v = parseUnsigned(s.slice(1));
    return v && { num: -v.num, den: v.den };
  }
  return parseUnsigned(s.startsWith('+') ? s.slice(1) : s);
}

function parseUnsigned(s: string): Rational | null {
  if (INT.test(s)) return { num: BigInt(s), den: 1n };
  if (THOUSANDS.test(s)) return { num: BigInt(s.replace(/,/g, '')), den: 1n };
  const dec = DECIMAL.exec(s);
  if (dec) {
    const digits = (dec[1] as string) + (dec[2] as string);
    return reduce(BigInt(digits || '0'), 10n ** BigInt((dec[2] as string).length));
  }
  return null;
}

function divide(a: Rational | null, b: Rational | null): Rational | null {
  if (!a || !b || b.num === 0n) return null;
  return reduce(a.num * b.den, a.den * b.num);
}

function reduce(num: bigint, den: bigint): Rational {
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const g = gcd(num < 0n ? -num : num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

function balanced(s: string): boolean {
  let depth = 0;
  for (const c of s) {
    if (c === '{') depth++;
    else if (c === '}' && --depth < 0) return false;
  }
  return depth === 0;
}
