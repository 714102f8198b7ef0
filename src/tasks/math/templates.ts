// Word-problem templates of the math task. Each template is a slot expression plus short sentences;
// the last sentence is the question. Slots: {a}..{d} numbers (in expression order), {n} and {m}
// two different names, {i} the item (plural), {j} another item, {x} a distractor number.

/** A word-problem template. */
export interface WordTemplate {
  /** Stable id, recorded in the problem data. */
  id: string;
  /** Slot expression ("a*b+c"); its tree decides the worked steps. */
  expr: string;
  /** Sentences; the last is the question. Distractors go between the first and the question. */
  sentences: readonly string[];
}

/** Built-in templates, 1 to 3 operations. */
export const WORD_TEMPLATES: readonly WordTemplate[] = [
  { id: 'gets', expr: 'a+b', sentences: ['{n} has {a} {i}.', '{n} gets {b} more.', 'How many {i} does {n} have now?'] },
  { id: 'gives', expr: 'a-b', sentences: ['{n} has {a} {i}.', '{n} gives away {b}.', 'How many {i} are left?'] },
  { id: 'bags', expr: 'a*b', sentences: ['{n} buys {a} bags of {b} {i}.', 'How many {i} is that?'] },
  { id: 'share', expr: 'a/b', sentences: ['{n} shares {a} {i} equally among {b} kids.', 'How many {i} does each kid get?'] },
  {
    id: 'gets-gives',
    expr: 'a+b-c',
    sentences: ['{n} has {a} {i}.', '{n} gets {b} more and gives away {c}.', 'How many {i} are left?'],
  },
  { id: 'gives-twice', expr: 'a-b-c', sentences: ['{n} has {a} {i}.', '{n} gives {b} to {m} and {c} to Kim.', 'How many {i} are left?'] },
  { id: 'bags-finds', expr: 'a*b+c', sentences: ['{n} buys {a} bags of {b} {i}.', '{n} finds {c} more.', 'How many {i} in all?'] },
  { id: 'bags-gives', expr: 'a*b-c', sentences: ['{n} buys {a} bags of {b} {i}.', '{n} gives away {c}.', 'How many {i} are left?'] },
  { id: 'has-buys', expr: 'a+b*c', sentences: ['{n} has {a} {i}.', '{n} buys {b} bags of {c}.', 'How many {i} in all?'] },
  {
    id: 'pool-share',
    expr: '(a+b)/c',
    sentences: ['{n} has {a} {i} and {m} has {b}.', 'They share them equally among {c} kids.', 'How many {i} does each kid get?'],
  },
  {
    id: 'two-bags',
    expr: 'a*b+c*d',
    sentences: ['{n} buys {a} bags of {b} {i} and {c} bags of {d}.', 'How many {i} in all?'],
  },
  {
    id: 'has-buys-gives',
    expr: 'a+b*c-d',
    sentences: ['{n} has {a} {i}.', '{n} buys {b} bags of {c} and gives away {d}.', 'How many {i} are left?'],
  },
  {
    id: 'pool-finds-share',
    expr: '(a+b+c)/d',
    sentences: ['{n} has {a} {i} and {m} has {b}.', 'They find {c} more and share them equally among {d} kids.', 'How many {i} does each kid get?'],
  },
  {
    id: 'bags-gives-twice',
    expr: 'a*b-c-d',
    sentences: ['{n} buys {a} bags of {b} {i}.', '{n} gives {c} to {m} and {d} to Kim.', 'How many {i} are left?'],
  },
];

/** Irrelevant sentences with a number {x}, inserted as distractors. */
export const DISTRACTOR_SENTENCES: readonly string[] = [
  '{n} is {x} years old.',
  '{m} has {x} {j}.',
  '{n} also has {x} {j}.',
  'The shop has {x} {j}.',
];

/** Names used for {n} and {m} ("Kim" is reserved for the templates' fixed third person). */
export const NAMES: readonly string[] = ['Ana', 'Ben', 'Cal', 'Dan', 'Eva', 'Max', 'Sam', 'Zoe', 'Tom', 'Liz'];

/** Plural items used for {i} and {j}. */
export const ITEMS: readonly string[] = ['apples', 'pens', 'cards', 'coins', 'eggs', 'books', 'shells', 'stamps'];
