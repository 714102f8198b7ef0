// A small argv parser: GNU-style long flags (`--steps 40`, `--steps=40`, `--resume`, `--no-resume`)
// checked against a per-command flag list, so a typo is an error with a suggestion instead of a
// silently ignored setting. Values stay strings here; fields.ts gives them types.
import { didYouMean } from './suggest.js';

/** A flag a command accepts: a switch (boolean) or one that takes a value. */
export interface FlagDef {
  name: string;
  boolean: boolean;
}

/** Parsed command line: flag values by flag name (without dashes) and the positional arguments. */
export interface ParsedArgs {
  flags: Map<string, string | boolean>;
  positionals: string[];
  /** Anything after a bare `--`, untouched. */
  rest: string[];
  /** Unknown or malformed flags (only non-empty when parsed with `lenient`). */
  problems: string[];
}

/** A command-line usage error (exit code 2); `problems` lists every issue found. */
export class UsageError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'UsageError';
    this.problems = problems;
  }
}

const BOOL_WORDS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, '1': true, '0': false };

/**
 * Parses `argv` against `defs`; throws a UsageError naming every unknown or malformed flag, or with
 * `lenient` returns them in `problems` so the caller can report them together with its own.
 */
export function parseArgs(argv: readonly string[], defs: readonly FlagDef[], lenient = false): ParsedArgs {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const names = defs.map((d) => d.name);
  const flags = new Map<string, string | boolean>();
  const positionals: string[] = [];
  const problems: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    if (arg === '-h') {
      flags.set('help', true);
      continue;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    let def = byName.get(name);
    let negated = false;
    if (!def && name.startsWith('no-') && byName.get(name.slice(3))?.boolean) {
      name = name.slice(3);
      def = byName.get(name);
      negated = true;
    }
    if (!def) {
      problems.push(`unknown flag --${name}${didYouMean(name, names, (s) => `--${s}`)}`);
      // Skip a value that plainly belongs to the unknown flag so it is not taken as a positional.
      if (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) i++;
      continue;
    }
    if (def.boolean) {
      if (negated) {
        if (inline !== undefined) problems.push(`--no-${name} takes no value (got '${inline}')`);
        flags.set(name, false);
      } else if (inline !== undefined) {
        const b = BOOL_WORDS[inline.toLowerCase()];
        if (b === undefined) problems.push(`--${name}: expected true or false, got '${inline}'`);
        else flags.set(name, b);
      } else if (argv[i + 1] !== undefined && /^(true|false)$/i.test(argv[i + 1])) {
        // `--resume false` reads naturally; only the literal words are taken, so a positional
        // after a switch is never swallowed.
        flags.set(name, argv[++i].toLowerCase() === 'true');
      } else {
        flags.set(name, true);
      }
      continue;
    }
    if (inline !== undefined) {
      flags.set(name, inline);
    } else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) {
      flags.set(name, argv[++i]);
    } else {
      problems.push(`--${name} needs a value`);
    }
  }
  if (problems.length > 0 && !lenient) throw new UsageError(problems);
  return { flags, positionals, rest, problems };
}

/** camelCase field name -> kebab-case flag name (`promptsPerStep` -> `prompts-per-step`). */
export function kebab(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** kebab-case flag name -> camelCase field name. */
export function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
