// Role -> policy tables. Shared-Policy maps every role to "policy"; Isolated-Policy gives each role
// type its own policy named after the role (parallel copies share it, as in the paper); any other
// table is a custom mapping. Custom keys are a role name ("aggregator") or a role copy
// ("generator#1", e.g. one policy per voter); a copy key wins over its role key.
import type { PolicyRouter } from '../workflows/sampler.js';

/** How a table was made. */
export type RoutingKind = 'shared' | 'isolated' | 'custom';

/** A validated role -> policy table. */
export interface RoutingTable extends PolicyRouter {
  readonly kind: RoutingKind;
  /** Distinct policy names, in order of first appearance in the table. */
  readonly policies: readonly string[];
  /** The table as data (keys: role or role#copy). */
  readonly entries: Readonly<Record<string, string>>;
}

/** A routing request: "shared", "isolated", or a custom {role or role#copy: policy} mapping. */
export type RoutingSpec = 'shared' | 'isolated' | Readonly<Record<string, string>>;

/** The policy name every role uses under Shared-Policy. */
export const SHARED_POLICY = 'policy';

function table(kind: RoutingKind, entries: Record<string, string>): RoutingTable {
  const frozen = Object.freeze({ ...entries });
  return {
    kind,
    entries: frozen,
    policies: [...new Set(Object.values(frozen))],
    policyFor(role: string, copy: number): string {
      const policy = frozen[`${role}#${copy}`] ?? frozen[role];
      if (policy === undefined) {
        throw new Error(`routing: no policy for role '${role}' copy ${copy} (table keys: ${Object.keys(frozen).join(', ')})`);
      }
      return policy;
    },
  };
}

/** Every role routes to one policy (default name "policy"). */
export function sharedRouting(roles: readonly string[], policy: string = SHARED_POLICY): RoutingTable {
  if (policy === '') throw new Error('routing: policy name must be non-empty');
  return table('shared', Object.fromEntries(roles.map((r) => [r, policy])));
}

/** Each role type routes to its own policy named after the role; copies share it. */
export function isolatedRouting(roles: readonly string[]): RoutingTable {
  return table('isolated', Object.fromEntries(roles.map((r) => [r, r])));
}

/** A user table validated against the workflow's roles; throws naming unknown and unmapped roles. */
export function customRouting(mapping: Readonly<Record<string, string>>, roles: readonly string[]): RoutingTable {
  const known = new Set(roles);
  const mapped = new Set<string>();
  const problems: string[] = [];
  const unknown: string[] = [];
  for (const [key, policy] of Object.entries(mapping)) {
    const m = /^([^#]+)(?:#(\d+))?$/.exec(key);
    if (!m) {
      problems.push(`bad key '${key}' (use "role" or "role#copy")`);
      continue;
    }
    if (!known.has(m[1]!)) unknown.push(key);
    else mapped.add(m[1]!);
    if (typeof policy !== 'string' || policy === '') problems.push(`empty policy name for '${key}'`);
  }
  const unmapped = roles.filter((r) => !mapped.has(r));
  if (unknown.length > 0) problems.push(`unknown roles: ${unknown.join(', ')}`);
  if (unmapped.length > 0) problems.push(`unmapped roles: ${unmapped.join(', ')}`);
  if (problems.length > 0) {
    throw new Error(`routing: ${problems.join('; ')} (workflow roles: ${roles.join(', ')})`);
  }
  return table('custom', { ...mapping });
}

/** The table for a spec: "shared", "isolated" or a custom mapping. */
export function makeRouting(spec: RoutingSpec, roles: readonly string[]): RoutingTable {
  if (spec === 'shared') return sharedRouting(roles);
  if (spec === 'isolated') return isolatedRouting(roles);
  if (typeof spec !== 'object' || spec === null) {
    throw new Error(`routing: expected "shared", "isolated" or a {role: policy} mapping, got ${String(spec)}`);
  }
  return customRouting(spec, roles);
}
