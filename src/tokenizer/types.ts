// The tokenizer contract shared by the built-in byte tokenizer and (later) the Qwen3 BPE tokenizer.

/** The ids of the chat special tokens every tokenizer of the project must have. */
export interface SpecialTokenIds {
  /** `<|endoftext|>` (also the padding token). */
  endOfText: number;
  /** `<|im_start|>`. */
  imStart: number;
  /** `<|im_end|>`: the stop token of an assistant completion. */
  imEnd: number;
  /** `<think>`. */
  thinkStart: number;
  /** `</think>`. */
  thinkEnd: number;
}

/** The text of each special token, as Qwen3 spells it. */
export const SPECIAL_TOKEN_TEXT: Readonly<Record<keyof SpecialTokenIds, string>> = {
  endOfText: '<|endoftext|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
  thinkStart: '<think>',
  thinkEnd: '</think>',
};

/** Options of Tokenizer.encode. */
export interface EncodeOptions {
  /** Turn special-token text ("<|im_end|>") into its special id; otherwise it is plain text. */
  allowSpecial?: boolean;
}

/** Options of Tokenizer.decode. */
export interface DecodeOptions {
  /** Drop special tokens instead of writing their text. */
  skipSpecial?: boolean;
}

/** A text <-> token id mapping with the chat specials; saved next to checkpoints. */
export interface Tokenizer {
  /** Number of ids the model's embedding must have (every id produced is below it). */
  readonly vocabSize: number;
  /** Ids that end a completion (`<|im_end|>` first, then `<|endoftext|>`). */
  readonly eosIds: readonly number[];
  /** Ids of the chat special tokens. */
  readonly specials: Readonly<SpecialTokenIds>;
  /** Token ids of a text; never throws on any string. */
  encode(text: string, opts?: EncodeOptions): Int32Array;
  /** Text of token ids; invalid UTF-8 and unknown ids become U+FFFD, never throws. */
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** Writes tokenizer.json and tokenizer_config.json into `dir` (created if missing). */
  save(dir: string): void;
}
